/* DWARF CFI unwinding for x86-64 from a signal handler (see cfi.h).
 *
 * At refresh (modules.c), each module's PT_GNU_EH_FRAME (.eh_frame_hdr) is parsed
 * here: version 1, a binary search table of (initial location, FDE address) pairs
 * encoded DW_EH_PE_datarel|DW_EH_PE_sdata4 (what GNU ld, gold, lld and mold write);
 * modules with any other table have none.
 *
 * On the signal side: the module whose executable segment holds the PC, the last
 * table entry at or below it, the FDE there and its CIE, their instructions run up
 * to the PC. Only the rules an x86-64 unwind needs are kept: the CFA (rsp or rbp +
 * offset), and the rbp and return address (column 16) rules. A CFA expression, or an
 * expression, register or val_* rule for rbp or the return address, when in force
 * at the PC, makes that frame CFI_FAILED (PLT entries, stack realignment in main,
 * signal trampolines); rules for other registers are parsed and ignored. Every read
 * of .eh_frame and .eh_frame_hdr is checked to lie inside one of the module's
 * segments, every stack read inside the thread's [lo, hi); every loop is bounded. */
#include "cfi.h"

#include <stddef.h>

#include "core/atomics.h"

#if defined(__x86_64__)

/* DWARF register numbers (x86-64 psABI). */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

/* Pointer encodings (LSB, DW_EH_PE_*). */
#define PE_OMIT 0xff
#define PE_ABSPTR 0x00
#define PE_ULEB128 0x01
#define PE_UDATA2 0x02
#define PE_UDATA4 0x03
#define PE_UDATA8 0x04
#define PE_SLEB128 0x09
#define PE_SDATA2 0x0a
#define PE_SDATA4 0x0b
#define PE_SDATA8 0x0c
#define PE_PCREL 0x10
#define PE_DATAREL 0x30
#define PE_INDIRECT 0x80

#define CFI_MAX_STATES 8        /* DW_CFA_remember_state depth */
#define CFI_MAX_OPS 65536       /* instructions run per record */
#define CFI_MAX_AUG 8           /* augmentation string length */

/* ---- bounded reads ------------------------------------------------------------ */

/* Is [a, a + len) inside one of @m's segments? */
static PROBE_SIGSAFE int
mod_readable(const struct module *m, uintptr_t a, uintptr_t len)
{
    for (unsigned i = 0; i < m->nseg; i++) {
        if (a >= m->seg[i].lo && a <= m->seg[i].hi && len <= m->seg[i].hi - a)
            return 1;
    }
    return 0; /* history entries have no segments read: their memory is gone */
}

/* A cursor over a checked span of a module: reads past @end set @bad. */
struct cursor {
    uintptr_t p, end;
    int bad;
};

static PROBE_SIGSAFE uint64_t
rd_le(struct cursor *c, unsigned size)
{
    uint64_t v = 0;

    if (c->bad || c->p > c->end || c->end - c->p < size) {
        c->bad = 1;
        return 0;
    }
    const uint8_t *b = (const uint8_t *)c->p;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)b[i] << (8 * i);
    c->p += size;
    return v;
}

static PROBE_SIGSAFE uint8_t
rd_u8(struct cursor *c)
{
    return (uint8_t)rd_le(c, 1);
}

static PROBE_SIGSAFE uint64_t
rd_uleb(struct cursor *c)
{
    uint64_t v = 0;

    for (unsigned shift = 0; shift < 70; shift += 7) {
        uint8_t b = rd_u8(c);
        if (c->bad)
            return 0;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    c->bad = 1;
    return 0;
}

static PROBE_SIGSAFE int64_t
rd_sleb(struct cursor *c)
{
    uint64_t v = 0;

    for (unsigned shift = 0; shift < 70; shift += 7) {
        uint8_t b = rd_u8(c);
        if (c->bad)
            return 0;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if ((b & 0x40) && shift + 7 < 64)
                v |= ~(uint64_t)0 << (shift + 7);
            return (int64_t)v;
        }
    }
    c->bad = 1;
    return 0;
}

/* A pointer encoded @enc. @apply: add its base (pcrel: the field's address,
 * datarel: @datarel) and reject indirect ones; else the raw value (pc_range, a
 * personality to skip). Other bases are rejected. */
static PROBE_SIGSAFE uintptr_t
rd_ptr(struct cursor *c, uint8_t enc, uintptr_t datarel, int apply)
{
    uintptr_t here = c->p;
    uint64_t v;

    if (enc == PE_OMIT) {
        c->bad = 1;
        return 0;
    }
    switch (enc & 0x0f) {
    case PE_ABSPTR:
    case PE_UDATA8:
    case PE_SDATA8: v = rd_le(c, 8); break;
    case PE_ULEB128: v = rd_uleb(c); break;
    case PE_SLEB128: v = (uint64_t)rd_sleb(c); break;
    case PE_UDATA2: v = rd_le(c, 2); break;
    case PE_UDATA4: v = rd_le(c, 4); break;
    case PE_SDATA2: v = (uint64_t)(int64_t)(int16_t)rd_le(c, 2); break;
    case PE_SDATA4: v = (uint64_t)(int64_t)(int32_t)rd_le(c, 4); break;
    default: c->bad = 1; return 0;
    }
    if (!apply)
        return (uintptr_t)v;
    switch (enc & 0x70) {
    case 0: break;
    case PE_PCREL: v += here; break;
    case PE_DATAREL:
        if (!datarel)
            c->bad = 1;
        v += datarel;
        break;
    default: c->bad = 1; break; /* textrel, funcrel, aligned */
    }
    if (enc & PE_INDIRECT)
        c->bad = 1;
    return (uintptr_t)v;
}

/* The record (CIE or FDE) at @a: its body after the length, to its end. Only the
 * 32-bit length form; a zero length (the terminator) is not a record. */
static PROBE_SIGSAFE int
rd_record(const struct module *m, uintptr_t a, struct cursor *out)
{
    struct cursor c = {a, a + 4, 0};

    if (!mod_readable(m, a, 4))
        return 0;
    uint64_t len = rd_le(&c, 4);
    if (len == 0 || len >= 0xfffffff0u || !mod_readable(m, a + 4, (uintptr_t)len))
        return 0;
    out->p = a + 4;
    out->end = a + 4 + (uintptr_t)len;
    out->bad = 0;
    return 1;
}

/* ---- CIE, FDE ----------------------------------------------------------------- */

struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_enc;
    int has_z;
    uintptr_t insn, insn_end;
};

static PROBE_SIGSAFE int
parse_cie(const struct module *m, uintptr_t a, struct cie *out)
{
    struct cursor c;
    char aug[CFI_MAX_AUG + 1];
    unsigned naug = 0;

    if (!rd_record(m, a, &c) || rd_le(&c, 4) != 0)
        return 0; /* not a CIE (.eh_frame CIEs have id 0) */
    uint8_t version = rd_u8(&c);
    if (version != 1 && version != 3 && version != 4)
        return 0;
    for (;;) {
        uint8_t ch = rd_u8(&c);
        if (c.bad || naug == CFI_MAX_AUG)
            return 0;
        aug[naug] = (char)ch;
        if (!ch)
            break;
        naug++;
    }
    if (naug && aug[0] != 'z')
        return 0; /* "eh" and other old forms */
    if (version == 4 && (rd_u8(&c) != 8 || rd_u8(&c) != 0))
        return 0; /* address size, segment selector size */
    out->code_align = rd_uleb(&c);
    out->data_align = rd_sleb(&c);
    uint64_t ra = version == 1 ? rd_u8(&c) : rd_uleb(&c);
    if (c.bad || ra != REG_RA)
        return 0;
    out->fde_enc = PE_ABSPTR;
    out->has_z = naug > 0;
    if (out->has_z) {
        uint64_t len = rd_uleb(&c);
        if (c.bad || len > c.end - c.p)
            return 0;
        uintptr_t data_end = c.p + (uintptr_t)len;
        for (unsigned i = 1; i < naug; i++) {
            switch (aug[i]) {
            case 'R': out->fde_enc = rd_u8(&c); break;
            case 'L': (void)rd_u8(&c); break; /* the FDE's LSDA: skipped with its data */
            case 'P': {
                uint8_t enc = rd_u8(&c);
                (void)rd_ptr(&c, enc, 0, 0);
                break;
            }
            case 'S': break; /* a signal frame: its rules are expressions anyway */
            default: return 0;
            }
        }
        if (c.bad || c.p > data_end)
            return 0;
        c.p = data_end;
    }
    if (c.bad)
        return 0;
    out->insn = c.p;
    out->insn_end = c.end;
    return 1;
}

/* ---- rules -------------------------------------------------------------------- */

enum how {
    SAME,           /* unchanged (the x86-64 default for callee-saved registers) */
    UNDEF,          /* undefined: for the return address, the outermost frame */
    OFFSET,         /* saved at CFA + off */
    UNSUPPORTED,    /* an expression, another register, val_*: give up if used */
};

struct rule {
    enum how how;
    int64_t off;
};

struct row {
    unsigned cfa_reg;   /* REG_RSP, REG_RBP, anything else gives up */
    int cfa_expr;       /* DW_CFA_def_cfa_expression in force */
    int64_t cfa_off;
    struct rule fp, ra;
};

/* The rule of register @reg in @r, or NULL for one not tracked. */
static PROBE_SIGSAFE struct rule *
rule_of(struct row *r, uint64_t reg)
{
    return reg == REG_RBP ? &r->fp : reg == REG_RA ? &r->ra : NULL;
}

static PROBE_SIGSAFE void
set_rule(struct row *r, uint64_t reg, enum how how, int64_t off)
{
    struct rule *x = rule_of(r, reg);

    if (x) {
        x->how = how;
        x->off = off;
    }
}

/* Signed factored offset, in wrapping arithmetic (garbage must not be UB). */
static PROBE_SIGSAFE int64_t
factored(int64_t v, int64_t f)
{
    return (int64_t)((uint64_t)v * (uint64_t)f);
}

/* Skip a DWARF expression block (length, bytes). */
static PROBE_SIGSAFE void
skip_block(struct cursor *c)
{
    uint64_t len = rd_uleb(c);

    if (c->bad || len > c->end - c->p)
        c->bad = 1;
    else
        c->p += (uintptr_t)len;
}

/* Run instructions [@insn, @end) from location @loc while it is <= @pc (the CIE's
 * with @pc = UINTPTR_MAX, to their end). @init: the row after the CIE's, for
 * DW_CFA_restore. Returns 0 on an unknown or malformed instruction. */
static PROBE_SIGSAFE int
run(const struct cie *cie, uintptr_t insn, uintptr_t end, uintptr_t loc, uintptr_t pc,
    struct row *r, const struct row *init)
{
    struct row stack[CFI_MAX_STATES];
    unsigned depth = 0;
    struct cursor c = {insn, end, 0};
    const int64_t daf = cie->data_align;

    for (unsigned ops = 0; c.p < c.end; ops++) {
        if (ops >= CFI_MAX_OPS)
            return 0;
        uint8_t op = rd_u8(&c);
        uint64_t reg, delta = 0;
        uint8_t low = op & 0x3f;
        switch (op & 0xc0) {
        case 0x40: /* DW_CFA_advance_loc */
            delta = low;
            goto advance;
        case 0x80: /* DW_CFA_offset */
            set_rule(r, low, OFFSET, factored((int64_t)rd_uleb(&c), daf));
            continue;
        case 0xc0: /* DW_CFA_restore */
            if (!init)
                return 0;
            if (low == REG_RBP)
                r->fp = init->fp;
            else if (low == REG_RA)
                r->ra = init->ra;
            continue;
        default: break;
        }
        switch (op) {
        case 0x00: /* DW_CFA_nop */
            break;
        case 0x01: /* DW_CFA_set_loc */
            loc = rd_ptr(&c, cie->fde_enc, 0, 1);
            if (c.bad)
                return 0;
            if (loc > pc)
                return 1;
            break;
        case 0x02: delta = rd_le(&c, 1); goto advance; /* DW_CFA_advance_loc1 */
        case 0x03: delta = rd_le(&c, 2); goto advance; /* DW_CFA_advance_loc2 */
        case 0x04: delta = rd_le(&c, 4); goto advance; /* DW_CFA_advance_loc4 */
        case 0x05: /* DW_CFA_offset_extended */
            reg = rd_uleb(&c);
            set_rule(r, reg, OFFSET, factored((int64_t)rd_uleb(&c), daf));
            break;
        case 0x06: /* DW_CFA_restore_extended */
            reg = rd_uleb(&c);
            if (!init)
                return 0;
            if (reg == REG_RBP)
                r->fp = init->fp;
            else if (reg == REG_RA)
                r->ra = init->ra;
            break;
        case 0x07: /* DW_CFA_undefined */
            set_rule(r, rd_uleb(&c), UNDEF, 0);
            break;
        case 0x08: /* DW_CFA_same_value */
            set_rule(r, rd_uleb(&c), SAME, 0);
            break;
        case 0x09: /* DW_CFA_register */
            reg = rd_uleb(&c);
            (void)rd_uleb(&c);
            set_rule(r, reg, UNSUPPORTED, 0);
            break;
        case 0x0a: /* DW_CFA_remember_state */
            if (depth == CFI_MAX_STATES)
                return 0;
            stack[depth++] = *r;
            break;
        case 0x0b: /* DW_CFA_restore_state: the CFA is restored too, as GCC expects */
            if (depth == 0)
                return 0;
            *r = stack[--depth];
            break;
        case 0x0c: /* DW_CFA_def_cfa */
            r->cfa_reg = (unsigned)rd_uleb(&c);
            r->cfa_off = (int64_t)rd_uleb(&c);
            r->cfa_expr = 0;
            break;
        case 0x0d: /* DW_CFA_def_cfa_register */
            r->cfa_reg = (unsigned)rd_uleb(&c);
            break;
        case 0x0e: /* DW_CFA_def_cfa_offset */
            r->cfa_off = (int64_t)rd_uleb(&c);
            break;
        case 0x0f: /* DW_CFA_def_cfa_expression */
            skip_block(&c);
            r->cfa_expr = 1;
            break;
        case 0x10: /* DW_CFA_expression */
        case 0x16: /* DW_CFA_val_expression */
            reg = rd_uleb(&c);
            skip_block(&c);
            set_rule(r, reg, UNSUPPORTED, 0);
            break;
        case 0x11: /* DW_CFA_offset_extended_sf */
            reg = rd_uleb(&c);
            set_rule(r, reg, OFFSET, factored(rd_sleb(&c), daf));
            break;
        case 0x12: /* DW_CFA_def_cfa_sf */
            r->cfa_reg = (unsigned)rd_uleb(&c);
            r->cfa_off = factored(rd_sleb(&c), daf);
            r->cfa_expr = 0;
            break;
        case 0x13: /* DW_CFA_def_cfa_offset_sf */
            r->cfa_off = factored(rd_sleb(&c), daf);
            break;
        case 0x14: /* DW_CFA_val_offset */
            reg = rd_uleb(&c);
            (void)rd_uleb(&c);
            set_rule(r, reg, UNSUPPORTED, 0);
            break;
        case 0x15: /* DW_CFA_val_offset_sf */
            reg = rd_uleb(&c);
            (void)rd_sleb(&c);
            set_rule(r, reg, UNSUPPORTED, 0);
            break;
        case 0x2e: /* DW_CFA_GNU_args_size */
            (void)rd_uleb(&c);
            break;
        case 0x2f: /* DW_CFA_GNU_negative_offset_extended */
            reg = rd_uleb(&c);
            /* Negated unsigned: no overflow on INT64_MIN from malformed CFI. */
            set_rule(r, reg, OFFSET,
                     (int64_t)(0 - (uint64_t)factored((int64_t)rd_uleb(&c), daf)));
            break;
        default:
            return 0;
        }
        if (c.bad)
            return 0;
        continue;
advance:
        if (c.bad)
            return 0;
        loc += (uintptr_t)(delta * cie->code_align);
        if (loc > pc)
            return 1;
    }
    return !c.bad;
}

/* ---- lookup ------------------------------------------------------------------- */

static PROBE_SIGSAFE int32_t
table_word(const struct module *m, uint32_t i)
{
    struct cursor c = {m->cfi_table + (uintptr_t)i * 4, m->cfi_table + (uintptr_t)i * 4 + 4, 0};

    return (int32_t)(uint32_t)rd_le(&c, 4);
}

/* The FDE whose table entry is the last at or below @pc: its address, or 0. */
static PROBE_SIGSAFE uintptr_t
fde_search(const struct module *m, uintptr_t pc)
{
    uint32_t a = 0, b = m->cfi_count;

    while (a < b) { /* the first entry starting above pc */
        uint32_t mid = a + (b - a) / 2;
        if (m->eh_hdr + (uintptr_t)(intptr_t)table_word(m, 2 * mid) <= pc)
            a = mid + 1;
        else
            b = mid;
    }
    if (a == 0)
        return 0;
    return m->eh_hdr + (uintptr_t)(intptr_t)table_word(m, 2 * (a - 1) + 1);
}

/* The module of @t with an unwind table for @pc, or NULL. */
static PROBE_SIGSAFE const struct module *
module_of(const struct module_table *t, uintptr_t pc)
{
    const struct module *m = modules_of_pc(t, pc);

    return m && m->cfi_count ? m : NULL;
}

PROBE_SIGSAFE int
cfi_has_table_in(const struct module_table *t, uintptr_t pc)
{
    return module_of(t, pc) != NULL;
}

PROBE_SIGSAFE int
cfi_has_table(uintptr_t pc)
{
    unsigned token;
    const struct module_table *t = modules_enter(&token);
    int r = t && cfi_has_table_in(t, pc);

    if (t)
        modules_leave(token);
    return r;
}

/* The word at @a on the stack [lo, hi), aligned. Not instrumented: a frame's saved
 * registers sit between ASan's redzones, but a wrong guess may not. */
static __attribute__((no_sanitize_address, no_sanitize_thread)) PROBE_SIGSAFE int
stack_word(uintptr_t a, uintptr_t lo, uintptr_t hi, uintptr_t *out)
{
    if (a < lo || a > hi - sizeof(uintptr_t) || (a & (sizeof(uintptr_t) - 1)))
        return 0;
    *out = *(const uintptr_t *)a;
    return 1;
}

PROBE_SIGSAFE enum cfi_result
cfi_step_in(const struct module_table *t, struct cfi_regs *regs, int is_return,
            uintptr_t lo, uintptr_t hi)
{
    uintptr_t pc = regs->pc - (is_return ? 1 : 0);
    const struct module *m = module_of(t, pc);
    struct cie cie;
    struct cursor c;

    if (!m || hi < sizeof(uintptr_t))
        return CFI_NONE;
    uintptr_t fde = fde_search(m, pc);
    if (!fde || !rd_record(m, fde, &c))
        return CFI_NONE;
    uintptr_t id_at = c.p;
    uint64_t delta = rd_le(&c, 4);
    if (c.bad || delta == 0 || delta > id_at || !parse_cie(m, id_at - (uintptr_t)delta, &cie))
        return CFI_FAILED;
    uintptr_t begin = rd_ptr(&c, cie.fde_enc, 0, 1);
    uintptr_t range = rd_ptr(&c, cie.fde_enc & 0x0f, 0, 0);
    if (c.bad)
        return CFI_FAILED;
    if (pc < begin || pc - begin >= range)
        return CFI_NONE; /* in a gap between FDEs (code with no CFI) */
    if (cie.has_z) {
        uint64_t len = rd_uleb(&c);
        if (c.bad || len > c.end - c.p)
            return CFI_FAILED;
        c.p += (uintptr_t)len;
    }

    struct row row = {REG_RSP, 0, 0, {SAME, 0}, {UNDEF, 0}}, init;
    if (!run(&cie, cie.insn, cie.insn_end, begin, UINTPTR_MAX, &row, NULL))
        return CFI_FAILED;
    init = row;
    if (!run(&cie, c.p, c.end, begin, pc, &row, &init))
        return CFI_FAILED;

    /* The caller's frame from the row. */
    if (row.cfa_expr || (row.cfa_reg != REG_RSP && row.cfa_reg != REG_RBP))
        return CFI_FAILED;
    uintptr_t cfa = (row.cfa_reg == REG_RSP ? regs->sp : regs->fp) + (uintptr_t)row.cfa_off;
    if (row.ra.how == UNDEF)
        return CFI_END;
    if (cfa <= regs->sp || cfa > hi)
        return CFI_FAILED; /* frames move up the stack, and stay on it */
    uintptr_t ra, fp = regs->fp;
    if (row.ra.how != OFFSET || !stack_word(cfa + (uintptr_t)row.ra.off, lo, hi, &ra))
        return CFI_FAILED;
    /* rbp's slot below the stack pointer: in an epilogue, after its pop (GCC does
     * not restore the rule there), so the register holds it again. */
    if (row.fp.how == OFFSET && cfa + (uintptr_t)row.fp.off >= regs->sp) {
        if (!stack_word(cfa + (uintptr_t)row.fp.off, lo, hi, &fp))
            return CFI_FAILED;
    } else if (row.fp.how == OFFSET) {
        fp = regs->fp;
    } else if (row.fp.how == UNDEF) {
        fp = 0;
    } else if (row.fp.how != SAME) {
        return CFI_FAILED;
    }
    if (!ra)
        return CFI_END;
    regs->pc = ra;
    regs->sp = cfa;
    regs->fp = fp;
    return CFI_STEPPED;
}

PROBE_SIGSAFE enum cfi_result
cfi_step(struct cfi_regs *regs, int is_return, uintptr_t lo, uintptr_t hi)
{
    unsigned token;
    const struct module_table *t = modules_enter(&token);
    enum cfi_result r = t ? cfi_step_in(t, regs, is_return, lo, hi) : CFI_NONE;

    if (t)
        modules_leave(token);
    return r;
}

/* ---- refresh ------------------------------------------------------------------ */

void
cfi_parse_table(struct module *m)
{
    struct cursor c = {m->eh_hdr, m->eh_hdr + 4, 0};

    m->cfi_table = 0;
    m->cfi_count = 0;
    if (!m->eh_hdr || !mod_readable(m, m->eh_hdr, 4))
        return;
    uint8_t version = rd_u8(&c), frame_enc = rd_u8(&c), count_enc = rd_u8(&c),
            table_enc = rd_u8(&c);
    if (version != 1 || table_enc != (PE_DATAREL | PE_SDATA4) || count_enc == PE_OMIT)
        return;
    /* The two encoded fields: at most 2 x 10 bytes (LEB128), checked as read. */
    c.end = c.p;
    for (unsigned i = 0; i < 20 && mod_readable(m, c.end, 1); i++)
        c.end++;
    (void)rd_ptr(&c, frame_enc, m->eh_hdr, 1);
    uint64_t count = rd_ptr(&c, count_enc, m->eh_hdr, 1);
    if (c.bad || count == 0 || count > UINT32_MAX / 2 ||
        !mod_readable(m, c.p, (uintptr_t)count * 8))
        return;
    m->cfi_table = c.p;
    m->cfi_count = (uint32_t)count;
}

void
cfi_refresh(void)
{
    (void)modules_refresh();
}

#else /* not x86-64: no CFI, frame pointers only */

void
cfi_parse_table(struct module *m)
{
    m->cfi_table = 0;
    m->cfi_count = 0;
}

void
cfi_refresh(void)
{
    (void)modules_refresh();
}

PROBE_SIGSAFE enum cfi_result
cfi_step_in(const struct module_table *t, struct cfi_regs *regs, int is_return,
            uintptr_t lo, uintptr_t hi)
{
    (void)t;
    return cfi_step(regs, is_return, lo, hi);
}

PROBE_SIGSAFE int
cfi_has_table_in(const struct module_table *t, uintptr_t pc)
{
    (void)t;
    (void)pc;
    return 0;
}

PROBE_SIGSAFE enum cfi_result
cfi_step(struct cfi_regs *regs, int is_return, uintptr_t lo, uintptr_t hi)
{
    (void)regs;
    (void)is_return;
    (void)lo;
    (void)hi;
    return CFI_NONE;
}

PROBE_SIGSAFE int
cfi_has_table(uintptr_t pc)
{
    (void)pc;
    return 0;
}

#endif
