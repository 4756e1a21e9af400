/**
 * Errors raised by the BPF layer. Every error names the operation and the object it
 * acted on, carries the errno and adds a hint for the errno values users meet.
 */
import { constants } from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) errnoNames.set(value, name);

export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `errno ${Math.abs(errno)}`;
}

const HINTS: Record<string, string> = {
  EPERM: 'run as root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN); on kernels before 5.11 also raise RLIMIT_MEMLOCK (ulimit -l unlimited)',
  EACCES: 'the verifier or a permission check refused it; on a pin, check that bpffs is mounted at the pin root',
  ENOENT: 'it does not exist: for a pin, check the pin root and that `sluice node init` ran; for a map key, there is no entry',
  EEXIST: 'it already exists',
  E2BIG: 'a size exceeds what the kernel accepts (map too large, program too complex or key/value size mismatch)',
  ENOSPC: 'the map is full (raise its max_entries or remove stale entries)',
  EBUSY: 'another program is already attached there',
  EINVAL: 'the kernel rejected an argument: often a feature this kernel lacks or a wrong attach type',
  EOPNOTSUPP: 'this kernel or device does not support the operation',
  ENODEV: 'no such network device (in this network namespace)',
  ENXIO: 'no such device or attachment',
  EBADF: 'a file descriptor was invalid or already closed',
  ENOTSUPP: 'this kernel or device does not support the operation',
};

export function errnoHint(errno: number): string | undefined {
  return HINTS[errnoName(errno)];
}

/** Any failed libbpf or bpf(2) call. */
export class BpfError extends Error {
  readonly errno: number;
  readonly op: string;
  readonly code: string;
  constructor(op: string, errno: number, detail?: string) {
    const e = Math.abs(errno);
    const name = errnoName(e);
    const hint = errnoHint(e);
    super(`${op}: ${name}${detail ? `: ${detail}` : ''}${hint ? ` (hint: ${hint})` : ''}`);
    this.name = 'BpfError';
    this.errno = e;
    this.op = op;
    this.code = name;
  }
}

/** A program the verifier rejected. `logPath` holds the complete verifier log. */
export class VerifierError extends BpfError {
  readonly program: string;
  readonly log: string;
  readonly logPath: string | undefined;
  constructor(program: string, object: string, errno: number, log: string, logPath: string | undefined, tailLines = 20) {
    const lines = log.trimEnd().split('\n');
    const tail = lines.slice(-tailLines).join('\n');
    const where = logPath ? `\nfull verifier log: ${logPath}` : '';
    super(`load program '${program}' from ${object}`, errno,
      `the verifier rejected it; last ${Math.min(tailLines, lines.length)} of ${lines.length} log lines:\n${tail}${where}\n`);
    this.name = 'VerifierError';
    this.program = program;
    this.log = log;
    this.logPath = logPath;
  }
}

/** Throws a BpfError when a libbpf call returned a negative error. */
export function check(ret: number, op: string, errnoFallback?: number): number {
  if (ret < 0) throw new BpfError(op, ret === -1 && errnoFallback ? errnoFallback : -ret);
  return ret;
}
