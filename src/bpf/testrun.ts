/** BPF_PROG_TEST_RUN: run a loaded program on a crafted packet, for tests and benchmarks. */
import { opts } from './abi.js';
import { BpfError } from './errors.js';
import { libbpf } from './native.js';
import type { Program } from './program.js';

export interface TestRunInput {
  data: Buffer;
  /** Context (e.g. a struct __sk_buff) passed in; its size must be what the kernel expects. */
  ctx?: Buffer;
  repeat?: number;
  /** Room for the output packet (default: input length + 256). */
  dataOutSize?: number;
}

export interface TestRunResult {
  retval: number;
  data: Buffer;
  ctx: Buffer | undefined;
  /** Average run time per repetition in ns, as the kernel measured it. */
  durationNs: number;
}

/** struct __sk_buff is 192 bytes on current kernels; ifindex is at offset 40 (uapi). */
export const SKB_CTX = { size: 192, ifindex: 40, ingressIfindex: 32, mark: 8, len: 0 } as const;

/** A __sk_buff context that sets skb->dev to `ifindex` (a device of the current netns). */
export function skbCtx(ifindex: number): Buffer {
  const ctx = Buffer.alloc(SKB_CTX.size);
  ctx.writeUInt32LE(ifindex, SKB_CTX.ifindex);
  return ctx;
}

export function testRun(prog: Program, input: TestRunInput): TestRunResult {
  const out = Buffer.alloc(input.dataOutSize ?? input.data.length + 256);
  const ctxOut = input.ctx ? Buffer.alloc(input.ctx.length) : undefined;
  const o = opts('bpf_test_run_opts')
    .set('data_in', input.data).set('data_size_in', input.data.length)
    .set('data_out', out).set('data_size_out', out.length)
    .set('repeat', input.repeat ?? 1);
  if (input.ctx) {
    o.set('ctx_in', input.ctx).set('ctx_size_in', input.ctx.length).set('ctx_out', ctxOut!).set('ctx_size_out', ctxOut!.length);
  }
  const ret = libbpf().bpf_prog_test_run_opts(prog.fd, o.buf) as number;
  if (ret < 0) throw new BpfError(`test run of program ${prog.name}`, -ret);
  const size = Number(o.get('data_size_out'));
  return {
    retval: Number(o.get('retval')),
    data: out.subarray(0, size),
    ctx: ctxOut,
    durationNs: Number(o.get('duration')),
  };
}
