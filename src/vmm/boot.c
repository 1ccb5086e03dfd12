/*
 * boot.c — bzImage and ELF64 loading, boot_params, e820 (boot.h).
 * Every offset and size read from the image is checked against the file
 * and against guest RAM before it is used: a bad image is an error, never
 * a write outside RAM.
 */
#include "vmm/boot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vnet/log.h"
#include "vmm/vmm.h"

#define ZERO_PAGE      BOOT_ZERO_PAGE
#define CMDLINE_ADDR   0x20000ull
#define CMDLINE_MAX    0x10000ull
#define EBDA_START     0x9fc00ull
#define HIGH_MEM_START 0x100000ull
#define MAX_IMAGE      (512ull << 20)

/* boot_params / setup_header offsets (Documentation/arch/x86/boot.rst, zero-page.rst) */
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES     0x1e8
#define HDR_SETUP_SECTS     0x1f1
#define HDR_BOOT_FLAG       0x1fe
#define HDR_JUMP            0x200
#define HDR_MAGIC           0x202
#define HDR_VERSION         0x206
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS       0x211
#define HDR_CODE32_START    0x214
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21c
#define HDR_HEAP_END_PTR    0x224
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGN    0x230
#define HDR_RELOCATABLE     0x234
#define HDR_XLOADFLAGS      0x236
#define HDR_CMDLINE_SIZE    0x238
#define HDR_PREF_ADDRESS    0x258
#define HDR_INIT_SIZE       0x260
#define BP_E820_TABLE       0x2d0
#define E820_MAX            128

#define LOADED_HIGH   0x01
#define CAN_USE_HEAP  0x80
#define XLF_KERNEL_64 0x01

static int read_file(const char *path, const char *what, uint8_t **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vmm_fail(-errno, "%s %s: %s", what, path, strerror(errno));
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0) {
		rc = vmm_fail(-errno, "%s %s: %s", what, path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		rc = vmm_fail(-EINVAL, "%s %s: not a regular file", what, path);
	} else if (st.st_size == 0) {
		rc = vmm_fail(-EINVAL, "%s %s: empty file", what, path);
	} else if ((uint64_t)st.st_size > MAX_IMAGE) {
		rc = vmm_fail(-EFBIG, "%s %s: larger than %llu MiB", what, path, MAX_IMAGE >> 20);
	} else if (!(*buf = malloc((size_t)st.st_size))) {
		rc = -ENOMEM;
	} else {
		size_t got = 0;
		while (got < (size_t)st.st_size) {
			ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);
			if (n <= 0) {
				rc = vmm_fail(n < 0 ? -errno : -EIO, "%s %s: read failed", what, path);
				free(*buf);
				*buf = NULL;
				break;
			}
			got += (size_t)n;
		}
		*len = got;
	}
	close(fd);
	return rc;
}

static uint16_t rd16(const uint8_t *p, size_t off) { uint16_t v; memcpy(&v, p + off, 2); return v; }
static uint32_t rd32(const uint8_t *p, size_t off) { uint32_t v; memcpy(&v, p + off, 4); return v; }
static uint64_t rd64(const uint8_t *p, size_t off) { uint64_t v; memcpy(&v, p + off, 8); return v; }
static void wr8(uint8_t *p, size_t off, uint8_t v) { p[off] = v; }
static void wr16(uint8_t *p, size_t off, uint16_t v) { memcpy(p + off, &v, 2); }
static void wr32(uint8_t *p, size_t off, uint32_t v) { memcpy(p + off, &v, 4); }

/* Copies `len` bytes to guest RAM at gpa, which must lie in low RAM. */
static int copy_to_guest(struct vmm *vmm, uint64_t gpa, const void *src, uint64_t len, const char *what)
{
	void *dst = vmm_gpa_to_host(vmm, gpa, len);
	if (!dst || gpa + len > vmm->low_size)
		return vmm_fail(-ENOSPC, "%s (%llu bytes at 0x%llx) does not fit in guest RAM (%llu MiB)",
				 what, (unsigned long long)len, (unsigned long long)gpa,
				 (unsigned long long)(vmm->mem_size >> 20));
	memcpy(dst, src, len);
	return 0;
}

static void add_e820(uint8_t *zp, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t n = zp[BP_E820_ENTRIES];
	if (n >= E820_MAX)
		return;
	uint8_t *e = zp + BP_E820_TABLE + 20u * n;
	memcpy(e, &addr, 8);
	memcpy(e + 8, &size, 8);
	memcpy(e + 16, &type, 4);
	zp[BP_E820_ENTRIES] = n + 1;
}

static void fill_e820(struct vmm *vmm, uint8_t *zp)
{
	add_e820(zp, 0, EBDA_START, 1);
	add_e820(zp, EBDA_START, HIGH_MEM_START - EBDA_START, 2);
	add_e820(zp, HIGH_MEM_START, vmm->low_size - HIGH_MEM_START, 1);
	if (vmm->nregions > 1)
		add_e820(zp, vmm->regions[1].gpa, vmm->regions[1].size, 1);
}

static int place_cmdline(struct vmm *vmm, uint8_t *zp, const char *cmdline, uint32_t max_len)
{
	char *full;
	if (asprintf(&full, "%s%s", cmdline ? cmdline : "", vmm->cmdline_extra) < 0)
		return -ENOMEM;
	size_t len = strlen(full);
	int rc = 0;
	if (len > max_len || len >= CMDLINE_MAX) {
		rc = vmm_fail(-E2BIG, "kernel command line of %zu bytes; this kernel takes %u", len, max_len);
	} else {
		rc = copy_to_guest(vmm, CMDLINE_ADDR, full, len + 1, "command line");
		wr32(zp, HDR_CMD_LINE_PTR, (uint32_t)CMDLINE_ADDR);
		wr32(zp, BP_EXT_CMD_LINE_PTR, 0);
	}
	free(full);
	return rc;
}

/* Puts the initrd as high as possible below `limit`, above `floor`. */
static int place_initrd(struct vmm *vmm, uint8_t *zp, const char *path, uint64_t floor, uint64_t limit)
{
	if (!path)
		return 0;
	uint8_t *data;
	size_t len;
	int rc = read_file(path, "initrd", &data, &len);
	if (rc < 0)
		return rc;
	uint64_t top = vmm->low_size < limit ? vmm->low_size : limit;
	uint64_t addr = top > len ? (top - len) & ~0xfffull : 0;
	if (addr < floor) {
		free(data);
		return vmm_fail(-ENOSPC, "initrd %s (%zu bytes) does not fit below 0x%llx above the kernel;"
				 " give the guest more --mem", path, len, (unsigned long long)top);
	}
	rc = copy_to_guest(vmm, addr, data, len, "initrd");
	free(data);
	wr32(zp, HDR_RAMDISK_IMAGE, (uint32_t)addr);
	wr32(zp, HDR_RAMDISK_SIZE, (uint32_t)len);
	return rc;
}

static int load_bzimage(struct vmm *vmm, const struct boot_config *cfg, const uint8_t *img, size_t len,
			uint8_t *zp, uint64_t *entry, bool *is64)
{
	if (len < 0x1000)
		return vmm_fail(-EINVAL, "kernel %s: too short for a bzImage", cfg->kernel);
	uint16_t version = rd16(img, HDR_VERSION);
	if (version < 0x206)
		return vmm_fail(-EINVAL, "kernel %s: boot protocol %u.%02u, need 2.06 or later", cfg->kernel,
				 version >> 8, version & 0xff);
	if (!(img[HDR_LOADFLAGS] & LOADED_HIGH))
		return vmm_fail(-EINVAL, "kernel %s: a zImage (loads low), not a bzImage", cfg->kernel);
	unsigned setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	size_t setup_size = (setup_sects + 1u) * 512u;
	size_t hdr_end = 0x202u + img[0x201];
	if (setup_size >= len || hdr_end > 0x1000 || hdr_end <= HDR_SETUP_SECTS)
		return vmm_fail(-EINVAL, "kernel %s: setup of %zu bytes, header end 0x%zx: corrupt", cfg->kernel,
				 setup_size, hdr_end);

	/* The zero page starts as the image's own setup header. */
	memcpy(zp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);

	uint64_t load = HIGH_MEM_START;
	if (version >= 0x20a && rd64(img, HDR_PREF_ADDRESS) >= HIGH_MEM_START)
		load = rd64(img, HDR_PREF_ADDRESS);
	uint64_t kernel_len = len - setup_size;
	uint64_t init_size = version >= 0x20a ? rd32(img, HDR_INIT_SIZE) : 0;
	if (init_size < kernel_len)
		init_size = kernel_len;
	if (load + init_size > vmm->low_size && load != HIGH_MEM_START && img[HDR_RELOCATABLE]) {
		/* A relocatable kernel may run from 1 MiB when its preferred address does not fit. */
		load = HIGH_MEM_START;
	}
	if (load + init_size > vmm->low_size)
		return vmm_fail(-ENOSPC, "kernel %s needs %llu MiB at 0x%llx; give the guest more --mem",
				 cfg->kernel, (unsigned long long)(init_size >> 20) + 1, (unsigned long long)load);
	int rc = copy_to_guest(vmm, load, img + setup_size, kernel_len, "kernel");
	if (rc < 0)
		return rc;

	wr8(zp, HDR_TYPE_OF_LOADER, 0xff);
	wr8(zp, HDR_LOADFLAGS, (uint8_t)(zp[HDR_LOADFLAGS] | CAN_USE_HEAP));
	wr16(zp, HDR_HEAP_END_PTR, 0xfe00);
	wr32(zp, HDR_CODE32_START, (uint32_t)load);
	if ((rc = place_cmdline(vmm, zp, cfg->cmdline, rd32(img, HDR_CMDLINE_SIZE))) < 0)
		return rc;
	uint64_t initrd_max = (uint64_t)rd32(img, HDR_INITRD_ADDR_MAX) + 1;
	if ((rc = place_initrd(vmm, zp, cfg->initrd, load + init_size, initrd_max)) < 0)
		return rc;

	*is64 = version >= 0x20c && (rd16(img, HDR_XLOADFLAGS) & XLF_KERNEL_64);
	*entry = *is64 ? load + 0x200 : load;
	return 0;
}

static int load_elf(struct vmm *vmm, const struct boot_config *cfg, const uint8_t *img, size_t len,
		    uint8_t *zp, uint64_t *entry)
{
	Elf64_Ehdr eh;
	if (len < sizeof(eh))
		return vmm_fail(-EINVAL, "kernel %s: truncated ELF header", cfg->kernel);
	memcpy(&eh, img, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
		return vmm_fail(-EINVAL, "kernel %s: not an x86-64 ELF64 executable", cfg->kernel);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phoff > len ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
		return vmm_fail(-EINVAL, "kernel %s: bad program header table", cfg->kernel);
	uint64_t end = 0;
	bool entry_loaded = false;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > len || ph.p_filesz > len - ph.p_offset ||
		    ph.p_paddr < HIGH_MEM_START || ph.p_paddr + ph.p_memsz < ph.p_paddr)
			return vmm_fail(-EINVAL, "kernel %s: segment %u is corrupt or below 1 MiB", cfg->kernel, i);
		void *dst = vmm_gpa_to_host(vmm, ph.p_paddr, ph.p_memsz);
		if (!dst || ph.p_paddr + ph.p_memsz > vmm->low_size)
			return vmm_fail(-ENOSPC, "kernel %s: segment %u at 0x%llx does not fit in guest RAM",
					 cfg->kernel, i, (unsigned long long)ph.p_paddr);
		memcpy(dst, img + ph.p_offset, ph.p_filesz);
		memset((uint8_t *)dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr + ph.p_memsz > end)
			end = ph.p_paddr + ph.p_memsz;
		if (eh.e_entry >= ph.p_vaddr && eh.e_entry - ph.p_vaddr < ph.p_memsz) {
			*entry = ph.p_paddr + (eh.e_entry - ph.p_vaddr);
			entry_loaded = true;
		}
	}
	if (!entry_loaded)
		return vmm_fail(-EINVAL, "kernel %s: entry point 0x%llx is in no loaded segment", cfg->kernel,
				 (unsigned long long)eh.e_entry);
	/* A minimal setup header, so that the guest finds its command line and initrd. */
	wr16(zp, HDR_BOOT_FLAG, 0xaa55);
	wr32(zp, HDR_MAGIC, 0x53726448); /* "HdrS" */
	wr16(zp, HDR_VERSION, 0x20c);
	wr8(zp, HDR_TYPE_OF_LOADER, 0xff);
	wr8(zp, HDR_LOADFLAGS, LOADED_HIGH);
	int rc = place_cmdline(vmm, zp, cfg->cmdline, CMDLINE_MAX - 1);
	if (rc == 0)
		rc = place_initrd(vmm, zp, cfg->initrd, (end + 0xfff) & ~0xfffull, 0xffffffffull);
	return rc;
}

int boot_load_image(struct vmm *vmm, const struct boot_config *cfg, uint64_t *entry_out)
{
	uint8_t *img = NULL;
	size_t len = 0;
	int rc = read_file(cfg->kernel, "kernel", &img, &len);
	if (rc < 0)
		return rc;
	uint8_t *zp = vmm_gpa_to_host(vmm, ZERO_PAGE, 4096);
	memset(zp, 0, 4096);

	uint64_t entry = 0;
	bool is64 = true;
	if (len >= 4 && memcmp(img, ELFMAG, SELFMAG) == 0)
		rc = load_elf(vmm, cfg, img, len, zp, &entry);
	else if (len >= 0x210 && rd32(img, HDR_MAGIC) == 0x53726448 && rd16(img, HDR_BOOT_FLAG) == 0xaa55)
		rc = load_bzimage(vmm, cfg, img, len, zp, &entry, &is64);
	else
		rc = vmm_fail(-EINVAL, "kernel %s: not a bzImage or an ELF64 executable", cfg->kernel);
	free(img);
	if (rc < 0)
		return rc;
	fill_e820(vmm, zp);
	/* BDA: the EBDA segment, where Linux also looks for the MP table. */
	wr16(vmm->mem, 0x40e, (uint16_t)(EBDA_START >> 4));
	if ((rc = mptable_write(vmm)) < 0)
		return rc;
	if (!is64)
		return vmm_fail(-ENOTSUP, "kernel %s: no 64-bit entry (XLF_KERNEL_64); 32-bit kernels are"
				 " not supported", cfg->kernel);
	*entry_out = entry;
	return 0;
}

int boot_load(struct vmm *vmm, const struct boot_config *cfg)
{
	uint64_t entry;
	int rc = boot_load_image(vmm, cfg, &entry);
	return rc < 0 ? rc : vmm_setup_boot_cpu(vmm, entry, ZERO_PAGE);
}
