/* Ring-3 entry of every guest: set up the runtime, run the test, report. */
#include <keel/kit.h>

void bootinfo_init(void);
void kit_main(void);

void kit_main(void)
{
	serial_init();
	bootinfo_init();
	test_main();
	test_end();
}
