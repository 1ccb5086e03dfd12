/*
 * start.S — entry of vnet's tiny test guest, and its exception stubs.
 *
 * vnet-vmm enters at _start in 64-bit long mode with paging on (the first
 * 4 GiB identity-mapped), interrupts off and RSI = the boot_params page; it
 * gives no usable stack. _start sets one up in .bss, zeroes .bss (the loader
 * may not), and calls tiny_main(boot_params).
 *
 * The 32 exception stubs push the vector (and a dummy error code where the
 * CPU pushes none) so that tiny_fault() gets one frame layout; tiny.c builds
 * the IDT from tiny_exception_stubs[]. IF stays 0, so only exceptions (and
 * NMI) ever arrive.
 *
 * Thread-safety: one CPU, no interrupts; nothing is shared.
 */
	.section .text.start, "ax"
	.code64
	.globl _start
_start:
	cli
	cld
	movq	%rsi, %r12			/* boot_params, kept across the bss clear */
	leaq	tiny_stack_top(%rip), %rsp
	leaq	__bss_start(%rip), %rdi
	leaq	__bss_end(%rip), %rcx
	subq	%rdi, %rcx
	shrq	$3, %rcx
	xorl	%eax, %eax
	rep stosq
	movq	%r12, %rdi
	xorl	%ebp, %ebp
	call	tiny_main
	movl	%eax, %edi			/* tiny_main does not return; be safe */
	call	tiny_exit
1:	hlt
	jmp	1b

	.text
/* Vectors whose exception pushes an error code: 8, 10-14, 17, 21, 29, 30. */
.macro STUB vec
	.balign 16
tiny_stub_\vec:
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$\vec
	jmp	tiny_exception_common
.endm

	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	STUB \v
	.endr

/* Stack: vector, error code, RIP, CS, RFLAGS, RSP, SS. */
tiny_exception_common:
	movq	0(%rsp), %rdi			/* vector */
	movq	8(%rsp), %rsi			/* error code */
	movq	16(%rsp), %rdx			/* faulting RIP */
	movq	%cr2, %rcx
	andq	$-16, %rsp
	call	tiny_fault			/* prints and exits: never returns */
2:	hlt
	jmp	2b

	.section .rodata
	.balign 8
	.globl tiny_exception_stubs
tiny_exception_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad	tiny_stub_\v
	.endr

	.section .bss
	.balign 16
tiny_stack:
	.skip	16384
tiny_stack_top:

	.section .note.GNU-stack, "", @progbits
