/**
 * A tiny ELF64 little-endian reader: just enough to pull sections (".BTF",
 * ".rodata", ...) and the symbol table out of a clang `-target bpf` object.
 * No I/O: callers pass the file's bytes. Returned section contents alias the
 * input (no copy), except NOBITS sections (".bss"), which read as zeros.
 */

const SHT_SYMTAB = 2;
const SHT_NOBITS = 8;
const SHN_UNDEF = 0;
const SHN_LORESERVE = 0xff00;
const SHN_XINDEX = 0xffff;
const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;

/** One entry of the section header table. */
export interface ElfSection {
  readonly index: number;
  readonly name: string;
  /** sh_type: 1 PROGBITS, 2 SYMTAB, 3 STRTAB, 8 NOBITS, ... */
  readonly type: number;
  /** File offset of the contents (meaningless for NOBITS). */
  readonly offset: number;
  /** Size in bytes (also for NOBITS, where the file holds no bytes). */
  readonly size: number;
  /** sh_link: for SYMTAB, the index of its string table. */
  readonly link: number;
}

/** One entry of the symbol table (`.symtab`). */
export interface ElfSymbol {
  readonly name: string;
  /** st_value: for a data symbol in a relocatable object, its offset in its section. */
  readonly value: number;
  readonly size: number;
  /** STB_*: 0 LOCAL, 1 GLOBAL, 2 WEAK. */
  readonly bind: number;
  /** STT_*: 0 NOTYPE, 1 OBJECT, 2 FUNC, 3 SECTION, 4 FILE. */
  readonly type: number;
  /** The section the symbol is defined in, or undefined (undefined/absolute/common). */
  readonly section: string | undefined;
}

/** Parsed view of an ELF64 LE file's section headers. */
interface ElfFile {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly sections: ElfSection[];
}

/** Read a u64 field as a number, rejecting values beyond 2^53 (no sane object has them). */
function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`ELF: ${what} is too large (${v})`);
  return Number(v);
}

/** Read a NUL-terminated string at `off` of a string-table section. */
function strAt(file: ElfFile, table: ElfSection, off: number, what: string): string {
  if (off >= table.size) {
    throw new Error(`ELF: ${what} name offset ${off} is outside string table "${table.name}" (${table.size} bytes)`);
  }
  const start = table.offset + off;
  const end = file.bytes.indexOf(0, start);
  if (end < 0 || end >= table.offset + table.size) {
    throw new Error(`ELF: ${what} name at offset ${off} is not NUL-terminated inside "${table.name}"`);
  }
  return Buffer.from(file.bytes.buffer, file.bytes.byteOffset + start, end - start).toString('latin1');
}

/** Check the ELF identification and parse the section header table. */
function parseElf(bytes: Uint8Array): ElfFile {
  if (bytes.length < 16 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new Error('ELF: not an ELF file (bad magic; expected \\x7fELF)');
  }
  if (bytes[4] !== 2) throw new Error(`ELF: not a 64-bit ELF file (EI_CLASS=${bytes[4]}, expected 2)`);
  if (bytes[5] !== 1) throw new Error(`ELF: not a little-endian ELF file (EI_DATA=${bytes[5]}, expected 1)`);
  if (bytes.length < EHDR_SIZE) throw new Error(`ELF: file truncated (${bytes.length} bytes, header needs ${EHDR_SIZE})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = u64(view, 0x28, 'e_shoff');
  const shentsize = view.getUint16(0x3a, true);
  let shnum = view.getUint16(0x3c, true);
  let shstrndx = view.getUint16(0x3e, true);
  if (shoff === 0) return { bytes, view, sections: [] };
  if (shentsize !== SHDR_SIZE) throw new Error(`ELF: unexpected section header size ${shentsize} (expected ${SHDR_SIZE})`);
  if (shoff + SHDR_SIZE > bytes.length) throw new Error(`ELF: section header table at ${shoff} is past end of file (${bytes.length} bytes)`);
  // Extended numbering: the real counts live in section 0.
  if (shnum === 0) shnum = u64(view, shoff + 32, 'section count');
  if (shstrndx === SHN_XINDEX) shstrndx = view.getUint32(shoff + 40, true);
  if (shoff + shnum * SHDR_SIZE > bytes.length) {
    throw new Error(`ELF: section header table (${shnum} entries at ${shoff}) is truncated (file has ${bytes.length} bytes)`);
  }
  const raw: Array<Omit<ElfSection, 'name'> & { nameOff: number }> = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * SHDR_SIZE;
    const type = view.getUint32(at + 4, true);
    const offset = u64(view, at + 24, `section ${i} offset`);
    const size = u64(view, at + 32, `section ${i} size`);
    if (type !== SHT_NOBITS && i !== 0 && offset + size > bytes.length) {
      throw new Error(`ELF: section ${i} (${offset}+${size}) extends past end of file (${bytes.length} bytes)`);
    }
    raw.push({ index: i, nameOff: view.getUint32(at, true), type, offset, size, link: view.getUint32(at + 40, true) });
  }
  const shstr = raw[shstrndx];
  if (shstr === undefined || shstrndx === SHN_UNDEF) {
    throw new Error(`ELF: section name string table index ${shstrndx} is out of range (${shnum} sections)`);
  }
  const file: ElfFile = { bytes, view, sections: [] };
  const shstrSection: ElfSection = { ...shstr, name: '.shstrtab' };
  for (const s of raw) {
    const { nameOff, ...rest } = s;
    file.sections.push({ ...rest, name: strAt(file, shstrSection, nameOff, `section ${s.index}`) });
  }
  return file;
}

/** The contents of a section: aliases `file`; NOBITS sections read as zeros. */
function contents(file: ElfFile, s: ElfSection): Uint8Array {
  if (s.type === SHT_NOBITS) return new Uint8Array(s.size);
  return file.bytes.subarray(s.offset, s.offset + s.size);
}

/**
 * The contents of the section called `name` (e.g. ".BTF"), or undefined if the
 * file has no such section. Throws if `file` is not an ELF64 little-endian file.
 */
export function readElfSection(file: Uint8Array, name: string): Uint8Array | undefined {
  const elf = parseElf(file);
  const s = elf.sections.find((sec) => sec.name === name);
  return s === undefined ? undefined : contents(elf, s);
}

/** Every section header of an ELF64 LE file, in table order (index 0 is the null section). */
export function listElfSections(file: Uint8Array): ElfSection[] {
  return parseElf(file).sections;
}

/** The symbol table (`.symtab`) of an ELF64 LE file; empty if it has none. Entry 0 (null) is skipped. */
export function readElfSymbols(file: Uint8Array): ElfSymbol[] {
  const elf = parseElf(file);
  const symtab = elf.sections.find((s) => s.type === SHT_SYMTAB);
  if (symtab === undefined) return [];
  const strtab = elf.sections[symtab.link];
  if (strtab === undefined) throw new Error(`ELF: symbol table's string table index ${symtab.link} is out of range`);
  const out: ElfSymbol[] = [];
  for (let at = symtab.offset + SYM_SIZE; at + SYM_SIZE <= symtab.offset + symtab.size; at += SYM_SIZE) {
    const info = elf.view.getUint8(at + 4);
    const shndx = elf.view.getUint16(at + 6, true);
    const section = shndx === SHN_UNDEF || shndx >= SHN_LORESERVE ? undefined : elf.sections[shndx]?.name;
    out.push({
      name: strAt(elf, strtab, elf.view.getUint32(at, true), 'symbol'),
      value: u64(elf.view, at + 8, 'symbol value'),
      size: u64(elf.view, at + 16, 'symbol size'),
      bind: info >> 4,
      type: info & 0xf,
      section,
    });
  }
  return out;
}
