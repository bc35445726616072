/* Exception entry stubs (ring 0). Any exception ends the test as FAIL. */
#include "segs.h"

	.text
	.macro	stub vec
	.balign 16
	.if (\vec == 8 || (\vec >= 10 && \vec <= 14) || \vec == 17 || \vec == 21 || \vec == 29 || \vec == 30)
	/* CPU pushed an error code */
	.else
	pushq	$0
	.endif
	pushq	$\vec
	jmp	trap_common
	.endm

	.globl trap_stubs
	.balign 16
trap_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	stub \v
	.endr

trap_common:
	/* frame: vec, err, rip, cs, rflags, rsp, ss */
	movq	%rsp, %rdi
	andq	$-16, %rsp
	call	trap_handler
1:	cli
	hlt
	jmp	1b
