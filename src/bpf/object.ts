/**
 * BPF objects: an opened object (its programs, maps and BTF, globals still writable)
 * is loaded into a LoadedObject (programs and maps with fds). Loading never attaches.
 * Maps declared with LIBBPF_PIN_BY_NAME are pinned under `pinRoot`, and an existing
 * pin is reused, so reloading keeps the maps' contents.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { opts } from './abi.js';
import { Btf } from './btf.js';
import { codecFor } from './codec.js';
import { BpfError, VerifierError } from './errors.js';
import { warnings, withLibbpfLog, type LibbpfMessage } from './log.js';
import { BpfMap, mapInfo } from './map.js';
import { copyOut, isNull, lastErrno, type Ptr } from '../sys/ffi.js';
import { libbpf } from './native.js';
import { ensurePinDir } from './pin.js';
import { Program } from './program.js';

export interface OpenOptions {
  /** Directory under which maps with pinning are pinned (and reused). */
  pinRoot?: string;
  /** Where a rejected program's full verifier log is written (default: $TMPDIR/sluice-verifier). */
  logDir?: string;
}

export class BpfObject {
  readonly btf: Btf;
  private loaded: LoadedObject | undefined;

  private constructor(private ptr: Ptr, readonly path: string, private readonly logDir: string) {
    const lib = libbpf();
    const btfPtr = lib.bpf_object__btf(ptr);
    if (isNull(btfPtr)) throw new Error(`${path} has no BTF: compile it with clang -g`);
    const size = [0];
    const raw = lib.btf__raw_data(btfPtr, size);
    this.btf = Btf.parse(copyOut(raw, size[0]!));
  }

  static open(path: string, o: OpenOptions = {}): BpfObject {
    const lib = libbpf();
    const oo = opts('bpf_object_open_opts');
    if (o.pinRoot) {
      ensurePinDir(o.pinRoot);
      oo.set('pin_root_path', Buffer.from(`${o.pinRoot}\0`));
    }
    const { result, messages } = withLibbpfLog(() => lib.bpf_object__open_file(path, oo.buf) as Ptr);
    if (isNull(result)) throw new BpfError(`open BPF object ${path}`, lastErrno(), warnings(messages) || undefined);
    try {
      return new BpfObject(result!, path, o.logDir ?? join(tmpdir(), 'sluice-verifier'));
    } catch (e) {
      lib.bpf_object__close(result);
      throw e;
    }
  }

  /** Names of the programs in the object, in ELF order. */
  programNames(): string[] {
    const lib = libbpf();
    const out: string[] = [];
    for (let p = lib.bpf_object__next_program(this.ptr, null); !isNull(p); p = lib.bpf_object__next_program(this.ptr, p)) {
      out.push(lib.bpf_program__name(p) as string);
    }
    return out;
  }

  mapNames(): string[] {
    const lib = libbpf();
    const out: string[] = [];
    for (let m = lib.bpf_object__next_map(this.ptr, null); !isNull(m); m = lib.bpf_object__next_map(this.ptr, m)) {
      out.push(lib.bpf_map__name(m) as string);
    }
    return out;
  }

  /** Names of the read-only globals (empty when the object has none). */
  globalNames(section = '.rodata'): string[] {
    if (!this.btf.findByName(section, 'DATASEC')) return [];
    return this.btf.datasec(section).map((v) => v.name);
  }

  /**
   * Sets read-only globals (`const volatile` variables in .rodata) before load, by name,
   * encoded from their BTF type. Unknown names are an error; unset ones keep the C default.
   */
  setGlobals(values: Record<string, unknown>, section = '.rodata'): void {
    if (this.loaded) throw new Error(`${this.path}: globals can only be set before load`);
    const lib = libbpf();
    const map = lib.bpf_object__find_map_by_name(this.ptr, section);
    if (isNull(map)) throw new Error(`${this.path} has no ${section} section (no const volatile globals)`);
    const size = [0];
    const init = lib.bpf_map__initial_value(map, size);
    const data = copyOut(init, size[0]!);
    const vars = new Map(this.btf.datasec(section).map((v) => [v.name, v]));
    for (const [name, value] of Object.entries(values)) {
      const v = vars.get(name);
      if (!v) throw new Error(`${basename(this.path)}: no global '${name}' in ${section} (have: ${[...vars.keys()].join(', ')})`);
      const codec = codecFor(this.btf, v.typeId);
      try {
        codec.encodeInto(value, data, v.offset);
      } catch (e) {
        throw new Error(`${basename(this.path)}: global ${name}: ${(e as Error).message}`);
      }
    }
    const ret = lib.bpf_map__set_initial_value(map, data, data.length) as number;
    if (ret < 0) throw new BpfError(`set ${section} of ${this.path}`, -ret);
  }

  /** Reads the current values of the read-only globals. */
  globals(section = '.rodata'): Record<string, unknown> {
    const lib = libbpf();
    const map = lib.bpf_object__find_map_by_name(this.ptr, section);
    if (isNull(map)) return {};
    const size = [0];
    const data = copyOut(lib.bpf_map__initial_value(map, size), size[0]!);
    const out: Record<string, unknown> = {};
    for (const v of this.btf.datasec(section)) out[v.name] = codecFor(this.btf, v.typeId).decode(data, v.offset);
    return out;
  }

  /** Loads every program and creates (or reuses pinned) maps. Throws VerifierError with the log on rejection. */
  load(): LoadedObject {
    if (this.loaded) return this.loaded;
    const lib = libbpf();
    const { result, messages } = withLibbpfLog(() => lib.bpf_object__load(this.ptr) as number);
    if ((result ?? -1) < 0) throw this.loadError(-(result ?? -lastErrno()), messages);
    this.loaded = new LoadedObject(this.ptr, this.path);
    return this.loaded;
  }

  private loadError(errno: number, messages: LibbpfMessage[]): Error {
    const text = messages.map((m) => m.text).join('');
    const log = /prog '([^']+)': -- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/.exec(text);
    const failed = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(text);
    const program = log?.[1] ?? failed?.[1];
    if (program) {
      let logPath: string | undefined;
      const body = log?.[2] ?? '(the kernel returned no verifier log)';
      try {
        mkdirSync(this.logDir, { recursive: true });
        logPath = join(this.logDir, `${basename(this.path, '.o')}-${program}-${Date.now()}.log`);
        writeFileSync(logPath, body);
      } catch {
        logPath = undefined;
      }
      return new VerifierError(program, this.path, errno, body, logPath);
    }
    return new BpfError(`load BPF object ${this.path}`, errno, warnings(messages) || undefined);
  }

  /** Closes the object; pinned maps, pinned programs and attachments stay in the kernel. */
  close(): void {
    if (this.ptr) {
      libbpf().bpf_object__close(this.ptr);
      this.ptr = 0n;
      this.loaded = undefined;
    }
  }
}

/** Programs and maps of a loaded object. Their fds live as long as the object. */
export class LoadedObject {
  readonly programs = new Map<string, Program>();
  readonly maps = new Map<string, BpfMap>();

  constructor(ptr: Ptr, readonly path: string) {
    const lib = libbpf();
    for (let p = lib.bpf_object__next_program(ptr, null); !isNull(p); p = lib.bpf_object__next_program(ptr, p)) {
      const name = lib.bpf_program__name(p) as string;
      this.programs.set(name, new Program(lib.bpf_program__fd(p) as number, name, false));
    }
    for (let m = lib.bpf_object__next_map(ptr, null); !isNull(m); m = lib.bpf_object__next_map(ptr, m)) {
      const name = lib.bpf_map__name(m) as string;
      const fd = lib.bpf_map__fd(m) as number;
      if (fd < 0) continue;
      const info = mapInfo(fd);
      if (info.type === 'ringbuf' || name.includes('.')) continue; // internal (.rodata/.bss) and ring buffers: no k/v access
      this.maps.set(name, BpfMap.fromFd(fd, false));
    }
  }

  program(name: string): Program {
    const p = this.programs.get(name);
    if (!p) throw new Error(`${this.path} has no program '${name}' (has: ${[...this.programs.keys()].join(', ')})`);
    return p;
  }

  map<K = unknown, V = unknown>(name: string): BpfMap<K, V> {
    const m = this.maps.get(name);
    if (!m) throw new Error(`${this.path} has no map '${name}' (has: ${[...this.maps.keys()].join(', ')})`);
    return m as BpfMap<K, V>;
  }
}
