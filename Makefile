# Convenience front end over Meson.  The two set-up commands in the README:
#   make run    install what is needed, build, boot the built-in demo guest
#   make check  install what is needed, build, run every test suite
# Both work as root on a fresh Debian 12 machine.

BUILD     ?= build
ASAN      ?= build-asan
MESON     ?= meson
DEB_PKGS  := build-essential clang meson ninja-build pkg-config python3 \
             liburing-dev libslirp-dev qemu-system-x86 busybox-static cpio kmod \
             iproute2 libclang-rt-14-dev acpica-tools xz-utils e2fsprogs
# Firmware (UEFI) tests, not wired into deps/check yet: what
# tests/nested/l1-qemu/build.sh needs besides DEB_PKGS to build the patched L1
# emulator, and what tests/nested/l1-qemu/smoke.sh needs. Both scripts install
# the missing ones themselves (tests/nested/README.md, "Firmware in the nested
# machine").
L1_QEMU_PKGS       := dpkg-dev libglib2.0-dev libpixman-1-dev libattr1-dev \
                      libcap-ng-dev zlib1g-dev libfdt-dev
FIRMWARE_TEST_PKGS := ovmf mtools dosfstools gdisk
GUEST     := $(BUILD)/guest/hello.elf
RUN_ARGS  ?= --cpus 2 --memory 256M --kernel $(GUEST) --cmdline "expect_mem_mib=256 demo"

.PHONY: all deps build run check check-nested check-asan bench clean

all: build

# Installs the Debian packages keel builds and tests with (skipped when present).
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Boots the demo guest.  Without hardware KVM (no /dev/kvm, or a paravirtual
# one such as kvm_pvm: tests/kvmhost.py) keel runs inside an emulated
# machine that has it.
# The demo guest ends by resetting the machine: keel's exit status 3.
run: deps build
	@if why=$$(python3 tests/kvmhost.py); then \
		$(BUILD)/keel run $(RUN_ARGS); \
	else \
		echo "make run: $$why; running keel inside an emulated L1 VM with KVM (tests/nested)"; \
		tests/nested/run-in-l1 -- $(BUILD)/keel run $(RUN_ARGS); \
	fi; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]

check: deps build
	$(MESON) test -C $(BUILD) --print-errorlogs --num-processes 2 || true
	$(MAKE) --no-print-directory check-nested
	$(MAKE) --no-print-directory check-asan
	@python3 tests/summary.py $(BUILD) $(ASAN)

# Without hardware KVM (tests/kvmhost.py), the keel-* suites skipped above run again inside
# an emulated machine that has KVM (tests/nested); their results are logged
# separately (meson-logs/nested.json) and counted by the summary.
check-nested: build
	@rm -f $(BUILD)/meson-logs/nested.json $(BUILD)/meson-logs/nested.error
	@if why=$$(python3 tests/kvmhost.py); then \
		echo "check-nested: hardware KVM here ($$why): keel suites ran directly"; \
	else \
		echo "check-nested: $$why: running the keel suites in the nested machine"; \
		tests/debian/setup.sh || echo "check-nested: tests/debian/setup.sh failed: the Debian guest tests will try again in L1"; \
		tests/nested/run-in-l1 --timeout 2400 -- $(MESON) test -C $(BUILD) --no-rebuild \
			--print-errorlogs --logbase nested --suite keel-guest --suite keel-linux --suite keel-api --suite keel-bench; \
		rc=$$?; \
		case $$rc in 0|1) ;; 77) echo "check-nested: no KVM even in the nested machine: keel suites stay skipped";; \
		*) echo "nested KVM harness failed with status $$rc" > $(BUILD)/meson-logs/nested.error;; esac; \
	fi

# The unit and CLI tests again, built by clang with ASan and UBSan, and the
# libFuzzer harnesses (clang only), 10 s each.
check-asan: deps
	@[ -f $(ASAN)/build.ninja ] || CC=clang $(MESON) setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(ASAN)
	$(MESON) test -C $(ASAN) --print-errorlogs --num-processes 2 --suite unit --suite cli --suite fuzz || true

bench: deps build
	python3 bench/run.py --build $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN)
