/** A loaded BPF program: an fd with a name, id and type. */
import { PROG_INFO, cString } from './abi.js';
import { BpfError } from './errors.js';
import { closeFd, objGet, objInfo } from './fd.js';
import { libbpf } from './native.js';
import { pinAtomically } from './pin.js';

export const PROG_TYPE = { socket_filter: 1, sched_cls: 3, sched_act: 4, xdp: 6 } as const;

export interface ProgramInfo {
  id: number;
  type: number;
  name: string;
  tag: string;
  runTimeNs: bigint;
  runCount: bigint;
}

export class Program {
  /** `owned`: the fd is ours to close (an opened pin); else it belongs to a loaded object. */
  constructor(readonly fd: number, readonly name: string, private readonly owned: boolean) {}

  static openPinned(path: string): Program {
    const fd = objGet(path, 'program');
    try {
      const info = Program.infoOf(fd);
      return new Program(fd, info.name, true);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
  }

  static fromId(id: number): Program {
    const fd = libbpf().bpf_prog_get_fd_by_id(id) as number;
    if (fd < 0) throw new BpfError(`open program id ${id}`, -fd);
    return new Program(fd, Program.infoOf(fd).name, true);
  }

  static infoOf(fd: number): ProgramInfo {
    const b = objInfo(fd, PROG_INFO.size, `program fd ${fd}`);
    return {
      id: b.readUInt32LE(PROG_INFO.id),
      type: b.readUInt32LE(PROG_INFO.type),
      name: cString(b, PROG_INFO.name, 16),
      tag: b.subarray(PROG_INFO.tag, PROG_INFO.tag + 8).toString('hex'),
      runTimeNs: b.readBigUInt64LE(PROG_INFO.runTimeNs),
      runCount: b.readBigUInt64LE(PROG_INFO.runCnt),
    };
  }

  info(): ProgramInfo {
    return Program.infoOf(this.fd);
  }

  /** Pins the program at `path`, replacing an existing pin atomically. */
  pin(path: string): void {
    pinAtomically(this.fd, path, `program ${this.name}`);
  }

  close(): void {
    if (this.owned) closeFd(this.fd);
  }
}
