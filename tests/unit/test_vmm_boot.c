/*
 * test_vmm_boot — vnet-vmm's kernel loader (src/vmm/boot.c) without KVM:
 * a fake VM whose RAM is one heap block exactly its size (so ASan catches a
 * byte written outside it), synthetic bzImage and ELF64 images, and every
 * way an image can be bad.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <elf.h>
#include <errno.h>
#include <cmocka.h>

#include "vmm/boot.h"
#include "vmm/vmm.h"

#define RAM (64u << 20)

static struct vmm vm;

static int setup(void **state)
{
	(void)state;
	memset(&vm, 0, sizeof(vm));
	vm.mem = calloc(1, RAM);
	vm.mem_size = vm.low_size = RAM;
	vm.nregions = 1;
	vm.regions[0] = (struct vnet_mem_region){ .gpa = 0, .size = RAM, .uaddr = (uintptr_t)vm.mem, .host = vm.mem };
	vm.ncpus = 2;
	return vm.mem ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(vm.mem);
	return 0;
}

static char *write_tmp(const void *data, size_t len)
{
	static char paths[4][64];
	static unsigned next;
	char *p = paths[next++ % 4];
	strcpy(p, "/tmp/vnet-test-boot.XXXXXX");
	int fd = mkstemp(p);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return p;
}

static uint32_t zp32(size_t off)
{
	uint32_t v;
	memcpy(&v, vm.mem + BOOT_ZERO_PAGE + off, 4);
	return v;
}

/* A minimal 64-bit bzImage: 4 setup sectors + boot sector, then the payload. */
static uint8_t *make_bzimage(size_t payload, size_t *len)
{
	size_t setup = 5 * 512;
	*len = setup + payload;
	uint8_t *img = calloc(1, *len);
	img[0x1f1] = 4;
	uint16_t flag = 0xaa55, version = 0x20f, xlf = 1;
	memcpy(img + 0x1fe, &flag, 2);
	img[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	memcpy(img + 0x206, &version, 2);
	img[0x211] = 1; /* LOADED_HIGH */
	uint32_t initrd_max = 0x37ffffff, align = 0x200000, cmdline_size = 2047, init_size = 0x400000;
	memcpy(img + 0x22c, &initrd_max, 4);
	memcpy(img + 0x230, &align, 4);
	img[0x234] = 1; /* relocatable */
	memcpy(img + 0x236, &xlf, 2);
	memcpy(img + 0x238, &cmdline_size, 4);
	uint64_t pref = 0x1000000;
	memcpy(img + 0x258, &pref, 8);
	memcpy(img + 0x260, &init_size, 4);
	for (size_t i = setup; i < *len; i++)
		img[i] = (uint8_t)(i * 7);
	return img;
}

static int load(const char *kernel, const char *initrd, const char *cmdline, uint64_t *entry)
{
	struct boot_config cfg = { .kernel = kernel, .initrd = initrd, .cmdline = cmdline };
	return boot_load_image(&vm, &cfg, entry);
}

static void bzimage_loads(void **state)
{
	(void)state;
	size_t len;
	uint8_t *img = make_bzimage(0x3000, &len);
	uint8_t initrd[5000];
	memset(initrd, 0x5a, sizeof(initrd));
	char *k = write_tmp(img, len), *i = write_tmp(initrd, sizeof(initrd));
	vmm_cmdline_append(&vm, "virtio_mmio.device=0x200@0xd0000000:5");
	uint64_t entry = 0;
	assert_int_equal(load(k, i, "console=ttyS0", &entry), 0);
	assert_int_equal(entry, 0x1000200);
	assert_memory_equal(vm.mem + 0x1000000, img + 5 * 512, 0x3000);
	assert_int_equal(vm.mem[BOOT_ZERO_PAGE + 0x210], 0xff);             /* type_of_loader */
	uint32_t cmd = zp32(0x228);
	assert_string_equal((char *)vm.mem + cmd, "console=ttyS0 virtio_mmio.device=0x200@0xd0000000:5");
	uint32_t rd = zp32(0x218), rdsz = zp32(0x21c);
	assert_int_equal(rdsz, sizeof(initrd));
	assert_true(rd % 4096 == 0 && rd + rdsz <= RAM && rd >= 0x1000000 + 0x400000);
	assert_memory_equal(vm.mem + rd, initrd, sizeof(initrd));
	assert_int_equal(vm.mem[BOOT_ZERO_PAGE + 0x1e8], 3);                /* e820 entries */
	assert_memory_equal(vm.mem + 0xf0000, "_MP_", 4);
	uint8_t sum = 0;
	for (int b = 0; b < 16; b++)
		sum = (uint8_t)(sum + vm.mem[0xf0000 + b]);
	assert_int_equal(sum, 0);
	unlink(k);
	unlink(i);
	free(img);
}

static void bzimage_bad(void **state)
{
	(void)state;
	size_t len;
	uint64_t entry;
	struct {
		const char *what;
		size_t off;
		uint8_t val;
		int rc;
	} cases[] = {
		{ "protocol 2.05", 0x206, 0x05, -EINVAL },
		{ "zImage", 0x211, 0x00, -EINVAL },
		{ "setup beyond file", 0x1f1, 0xff, -EINVAL },
		{ "no 64-bit entry", 0x236, 0x00, -ENOTSUP },
		{ "command line limit", 0x239, 0x00, -E2BIG },    /* cmdline_size 2047 -> 255 */
		{ "init_size beyond RAM", 0x263, 0x10, -ENOSPC }, /* 256 MiB */
		{ "longest header", 0x201, 0xff, 0 },             /* header to 0x301: still inside setup */
	};
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint8_t *img = make_bzimage(0x2000, &len);
		img[cases[c].off] = cases[c].val;
		char *k = write_tmp(img, len);
		char longline[400];
		memset(longline, 'x', sizeof(longline) - 1);
		longline[sizeof(longline) - 1] = 0;
		int rc = load(k, NULL, cases[c].rc == -E2BIG ? longline : "x", &entry);
		if (rc != cases[c].rc)
			fail_msg("%s: %d, expected %d", cases[c].what, rc, cases[c].rc);
		unlink(k);
		free(img);
	}
	/* initrd too large for RAM */
	uint8_t *img = make_bzimage(0x2000, &len);
	char *k = write_tmp(img, len);
	char *big = "/tmp/vnet-test-boot-big";
	FILE *f = fopen(big, "w");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), RAM), 0);
	fclose(f);
	assert_int_equal(load(k, big, "x", &entry), -ENOSPC);
	assert_int_equal(load(k, "/nonexistent/initrd", "x", &entry), -ENOENT);
	unlink(big);
	unlink(k);
	free(img);
}

static void not_an_image(void **state)
{
	(void)state;
	uint64_t entry;
	uint8_t junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	char *k = write_tmp(junk, sizeof(junk));
	assert_int_equal(load(k, NULL, "x", &entry), -EINVAL);
	unlink(k);
	k = write_tmp("", 0);
	assert_int_equal(load(k, NULL, "x", &entry), -EINVAL);
	unlink(k);
	assert_int_equal(load("/nonexistent/kernel", NULL, "x", &entry), -ENOENT);
	assert_int_equal(load("/tmp", NULL, "x", &entry), -EINVAL);
}

struct elf_img {
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint8_t code[64];
};

static struct elf_img make_elf(void)
{
	struct elf_img e;
	memset(&e, 0, sizeof(e));
	memcpy(e.eh.e_ident, ELFMAG, SELFMAG);
	e.eh.e_ident[EI_CLASS] = ELFCLASS64;
	e.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e.eh.e_ident[EI_VERSION] = EV_CURRENT;
	e.eh.e_type = ET_EXEC;
	e.eh.e_machine = EM_X86_64;
	e.eh.e_version = EV_CURRENT;
	e.eh.e_entry = 0x200010;
	e.eh.e_phoff = offsetof(struct elf_img, ph);
	e.eh.e_ehsize = sizeof(Elf64_Ehdr);
	e.eh.e_phentsize = sizeof(Elf64_Phdr);
	e.eh.e_phnum = 1;
	e.ph.p_type = PT_LOAD;
	e.ph.p_offset = offsetof(struct elf_img, code);
	e.ph.p_vaddr = e.ph.p_paddr = 0x200000;
	e.ph.p_filesz = sizeof(e.code);
	e.ph.p_memsz = 0x1000;
	memset(e.code, 0x90, sizeof(e.code));
	return e;
}

static void elf_loads(void **state)
{
	(void)state;
	struct elf_img e = make_elf();
	memset(vm.mem + 0x200000, 0xee, 0x1000); /* the bss part must be zeroed */
	char *k = write_tmp(&e, sizeof(e));
	uint64_t entry = 0;
	assert_int_equal(load(k, NULL, "tiny.tx=5", &entry), 0);
	assert_int_equal(entry, 0x200010);
	assert_memory_equal(vm.mem + 0x200000, e.code, sizeof(e.code));
	assert_int_equal(vm.mem[0x200000 + 0xfff], 0);
	assert_string_equal((char *)vm.mem + zp32(0x228), "tiny.tx=5");
	assert_int_equal(zp32(0x202), 0x53726448);
	unlink(k);
}

static void elf_bad(void **state)
{
	(void)state;
	uint64_t entry;
	for (int c = 0; c < 8; c++) {
		struct elf_img e = make_elf();
		int want = -EINVAL;
		switch (c) {
		case 0: e.ph.p_paddr = RAM - 0x800; want = -ENOSPC; break;        /* beyond RAM */
		case 1: e.ph.p_paddr = 0xfffffffffffff000ull; break;              /* wraps */
		case 2: e.eh.e_entry = 0x900000; break;                           /* entry outside */
		case 3: e.eh.e_phoff = 1u << 30; break;                           /* table beyond file */
		case 4: e.ph.p_filesz = 0x2000; break;                            /* filesz > memsz */
		case 5: e.ph.p_offset = 1u << 20; break;                          /* data beyond file */
		case 6: e.eh.e_machine = EM_AARCH64; break;
		case 7: e.ph.p_paddr = 0x1000; break;                             /* below 1 MiB */
		}
		char *k = write_tmp(&e, sizeof(e));
		assert_int_equal(load(k, NULL, "x", &entry), want);
		unlink(k);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(bzimage_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(bzimage_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(not_an_image, setup, teardown),
		cmocka_unit_test_setup_teardown(elf_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(elf_bad, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
