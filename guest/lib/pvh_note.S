/* XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry point, as Linux emits it. */
	.section .note.Xen, "a", @note
	.balign 4
	.long	4		/* namesz */
	.long	8		/* descsz */
	.long	18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.balign 4
	.quad	pvh_start
