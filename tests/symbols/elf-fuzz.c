/* Every offset and size libprobe reads from an ELF file or from a loaded module is
 * checked: this mutates a small library's program headers (PT_NOTE,
 * PT_GNU_EH_FRAME), section headers (.symtab, .strtab, .dynsym, notes), and bytes
 * of its .eh_frame, .eh_frame_hdr, .symtab and notes, seeded and reproducible. Each
 * mutant is loaded in a child; when the loader accepts it, the child samples inside
 * it, names its frames (snapshot, pprof, json), pins its tables for the fault dumper
 * and dumps from inside it. A child that dies after the loader accepted the mutant is
 * a failure of ours, reported with its seed.
 *
 * Usage: elf-fuzz LIBRARY [ITERATIONS [FIRST_SEED]] */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <probe/probe.h>

static unsigned char *orig;
static size_t orig_size;
static int devnull;

static uint64_t rng;

static uint64_t
next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A hostile value for a field that held @v. */
static uint64_t
hostile(uint64_t v, uint64_t file_size)
{
    switch (next() % 8) {
    case 0: return 0;
    case 1: return UINT64_MAX - next() % 16;
    case 2: return v + 1 + next() % 64;
    case 3: return v - 1 - next() % 64;
    case 4: return file_size + next() % 4096;
    case 5: return (uint64_t)1 << (next() % 63);
    case 6: return next();
    default: return v ^ ((uint64_t)1 << (next() % 32));
    }
}

static void
set_field(void *p, size_t width, uint64_t v)
{
    if (width == 8) {
        memcpy(p, &v, 8);
    } else if (width == 4) {
        uint32_t w = (uint32_t)v;
        memcpy(p, &w, 4);
    } else {
        uint16_t w = (uint16_t)v;
        memcpy(p, &w, 2);
    }
}

static uint64_t
get_field(const void *p, size_t width)
{
    uint64_t v = 0;
    memcpy(&v, p, width);
    return v;
}

/* Randomize a few bytes of [off, off + len). */
static void
scribble(unsigned char *m, size_t size, uint64_t off, uint64_t len)
{
    if (off >= size || len == 0)
        return;
    if (len > size - off)
        len = size - off;
    for (int k = 1 + (int)(next() % 4); k > 0; k--)
        m[off + next() % len] = (unsigned char)next();
}

/* One mutation of the image @m (a copy of the library). */
static void
mutate(unsigned char *m, size_t size)
{
    Elf64_Ehdr *eh = (Elf64_Ehdr *)m;
    Elf64_Phdr *ph = (Elf64_Phdr *)(m + eh->e_phoff);
    Elf64_Shdr *sh = (Elf64_Shdr *)(m + eh->e_shoff);
    const char *shstr = (const char *)m + sh[eh->e_shstrndx].sh_offset;
    int tries = 0;

    for (;;) {
        if (++tries > 100)
            return;
        unsigned what = (unsigned)(next() % 4);
        if (what == 0) { /* a program header the loader does not map */
            Elf64_Phdr *p = &ph[next() % eh->e_phnum];
            if (p->p_type != PT_NOTE && p->p_type != PT_GNU_EH_FRAME)
                continue;
            static const size_t offs[] = {offsetof(Elf64_Phdr, p_offset),
                                          offsetof(Elf64_Phdr, p_vaddr),
                                          offsetof(Elf64_Phdr, p_filesz),
                                          offsetof(Elf64_Phdr, p_memsz)};
            unsigned char *f = (unsigned char *)p + offs[next() % 4];
            set_field(f, 8, hostile(get_field(f, 8), size));
            return;
        }
        Elf64_Shdr *s = &sh[next() % eh->e_shnum];
        const char *name = shstr + s->sh_name;
        int wanted = s->sh_type == SHT_SYMTAB || s->sh_type == SHT_STRTAB ||
                     s->sh_type == SHT_DYNSYM || s->sh_type == SHT_NOTE ||
                     strcmp(name, ".eh_frame") == 0 || strcmp(name, ".eh_frame_hdr") == 0;
        if (!wanted || (s->sh_type == SHT_STRTAB && strcmp(name, ".strtab") != 0))
            continue;
        if (s->sh_type == SHT_DYNSYM && what == 1)
            continue; /* the loader reads .dynsym's contents: only its header */
        if (what == 1) { /* the bytes of a section the loader does not read */
            scribble(m, size, s->sh_offset, s->sh_size);
            return;
        }
        /* a section header's offset, size, link or entry size */
        static const struct { size_t off, width; } fields[] = {
            {offsetof(Elf64_Shdr, sh_offset), 8}, {offsetof(Elf64_Shdr, sh_size), 8},
            {offsetof(Elf64_Shdr, sh_link), 4}, {offsetof(Elf64_Shdr, sh_entsize), 8}};
        unsigned k = (unsigned)(next() % 4);
        unsigned char *f = (unsigned char *)s + fields[k].off;
        set_field(f, fields[k].width, hostile(get_field(f, fields[k].width), size));
        return;
    }
}

static void
inside(void)
{
    /* From inside the mutant: unwinds through its .eh_frame, names from its tables. */
    (void)probe_fault_dump(devnull, 0);
}

static int
child(const char *path, int progress)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return 3; /* the loader refused it */
    if (write(progress, "L", 1) != 1)
        return 4;
    void (*run)(uint64_t, void (*)(void));
    *(void **)&run = dlsym(h, "fuzzmod_run"); /* the POSIX idiom for a function */
    if (!run)
        return 3; /* its .dynsym no longer names it */
    probe_sampler_options o = PROBE_SAMPLER_OPTIONS_INIT;
    o.interval_ns = 200000;
    if (probe_sampler_start(&o) != 0)
        return 5;
    (void)probe_fault_register(SIGUSR2, devnull, 1, 0); /* pins the mutant's tables */
    run(20000000, inside);
    (void)probe_sampler_stop();
    if (probe_report_fd(devnull, "pprof") < 0 || probe_report_fd(devnull, "json") < 0 ||
        probe_report_fd(devnull, "tree") < 0)
        return 6;
    (void)raise(SIGUSR2);
    dlclose(h);
    /* After the unload: names and mappings from what was kept. */
    if (probe_report_fd(devnull, "pprof") < 0 || probe_report_fd(devnull, "collapsed") < 0)
        return 6;
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: elf-fuzz LIBRARY [ITERATIONS [FIRST_SEED]]\n");
        return 2;
    }
    int iterations = argc > 2 ? atoi(argv[2]) : 200;
    uint64_t first = argc > 3 ? strtoull(argv[3], NULL, 0) : 1;
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    devnull = open("/dev/null", O_WRONLY);
    if (fd < 0 || fstat(fd, &st) < 0 || devnull < 0) {
        perror(argv[1]);
        return 2;
    }
    orig_size = (size_t)st.st_size;
    orig = malloc(orig_size);
    if (!orig || read(fd, orig, orig_size) != (ssize_t)orig_size)
        return 2;
    close(fd);

    char dir[] = "/tmp/probe-elf-fuzz-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    int loaded = 0, refused = 0, loader_died = 0, failed = 0;
    unsigned char *m = malloc(orig_size);
    for (int it = 0; it < iterations && m; it++) {
        uint64_t seed = first + (uint64_t)it;
        char path[128];
        rng = seed * 0x9e3779b97f4a7c15u | 1;
        memcpy(m, orig, orig_size);
        for (int k = 1 + (int)(next() % 3); k > 0; k--)
            mutate(m, orig_size);
        /* A new name each time: the loader would take a same-named one as loaded. */
        snprintf(path, sizeof(path), "%s/mutant-%llu.so", dir, (unsigned long long)seed);
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
        if (out < 0 || write(out, m, orig_size) != (ssize_t)orig_size)
            return 2;
        close(out);
        int p[2];
        if (pipe(p) < 0)
            return 2;
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            alarm(30);
            _exit(child(path, p[1]));
        }
        close(p[1]);
        char c;
        int accepted = read(p[0], &c, 1) == 1;
        close(p[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        unlink(path);
        if (!accepted) {
            if (WIFSIGNALED(status))
                loader_died++; /* inside dlopen: the loader's business, not ours */
            else
                refused++;
            continue;
        }
        if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3)) {
            loaded++;
            continue;
        }
        failed++;
        fprintf(stderr, "seed %llu: child %s %d after the mutant was loaded\n",
                (unsigned long long)seed, WIFSIGNALED(status) ? "died by signal" : "exit",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    rmdir(dir);
    free(m);
    free(orig);
    printf("mutants: %d loaded and profiled, %d refused by the loader, %d killed the "
           "loader, %d failed\n", loaded, refused, loader_died, failed);
    return failed || loaded < iterations / 4 ? 1 : 0;
}
