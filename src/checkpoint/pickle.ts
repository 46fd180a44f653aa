// A restricted unpickler for PyTorch's state-dict files: it understands the opcodes torch.save
// writes (protocol 2, and 4's framing) and builds plain values — numbers, strings, lists, tuples,
// dicts — and, through a table of allowed globals, ordered dicts, storages and tensors. Any other
// global (a class, a function such as os.system) is refused by name: nothing in the file is
// ever executed, unlike Python's pickle.load.

export class PickleError extends Error {}

/** What the unpickler builds. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | Map<PickleValue, PickleValue>
  | PickleGlobal
  | object;

/** A Python tuple, kept apart from lists. */
export class PickleTuple {
  constructor(readonly items: PickleValue[]) {}
}

/** A global the caller allowed: callable through REDUCE when `call` is given. */
export interface PickleGlobal {
  readonly global: string;
  call?(args: PickleValue[]): PickleValue;
}

export interface UnpickleOptions {
  /** Allowed globals by 'module.name'; anything else is refused. */
  globals: Record<string, PickleGlobal>;
  /** BINPERSID: resolves a persistent id (torch: ('storage', type, key, location, numel)). */
  persistentLoad(pid: PickleValue): PickleValue;
  /** Names the file in errors. */
  source: string;
}

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

/** Unpickles `bytes` with only the given globals. */
export function unpickle(bytes: Uint8Array, { globals, persistentLoad, source }: UnpickleOptions): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8');
  const stack: StackItem[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  const fail = (why: string): never => {
    throw new PickleError(`${source}: ${why} (pickle byte ${pos})`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail('truncated');
  };
  const u8 = () => (need(1), bytes[pos++]!);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const take = (n: number) => (need(n), (pos += n), bytes.subarray(pos - n, pos));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated line');
    const s = text.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) fail('stack underflow');
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail('stack underflow');
    return v as PickleValue;
  };
  const popMark = (): PickleValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('no mark on the stack');
    const items = stack.splice(i) as PickleValue[];
    return items.slice(1);
  };
  const setItems = (target: PickleValue, items: PickleValue[]) => {
    if (!(target instanceof Map)) fail('SETITEM(S) on a value that is not a dict');
    for (let i = 0; i + 1 < items.length; i += 2) (target as Map<PickleValue, PickleValue>).set(items[i]!, items[i + 1]!);
  };
  const append = (target: PickleValue, items: PickleValue[]) => {
    if (!Array.isArray(target)) fail('APPEND(S) on a value that is not a list');
    (target as PickleValue[]).push(...items);
  };
  const memoize = (key: number) => memo.set(key, top());

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: take(8); break; // FRAME: a length hint
      case 0x2e: return pop(); // STOP
      case 0x28: stack.push(MARK); break;
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(new PickleTuple([])); break; // EMPTY_TUPLE
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: need(4); stack.push(view.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x8a: { // LONG1: little-endian two's complement
        const b = take(u8());
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (b.length > 0 && b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
        stack.push(Number.isSafeInteger(Number(v)) ? Number(v) : v);
        break;
      }
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT
      case 0x58: stack.push(text.decode(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(text.decode(take(u8()))); break; // SHORT_BINUNICODE
      case 0x55: stack.push(text.decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x54: stack.push(text.decode(take(u32()))); break; // BINSTRING
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x71: memoize(u8()); break; // BINPUT
      case 0x72: memoize(u32()); break; // LONG_BINPUT
      case 0x94: memoize(memo.size); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) fail(`memo ${key} is empty`);
        stack.push(memo.get(key)!);
        break;
      }
      case 0x74: stack.push(new PickleTuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new PickleTuple([pop()])); break;
      case 0x86: { const b = pop(); stack.push(new PickleTuple([pop(), b])); break; }
      case 0x87: { const c = pop(); const b = pop(); stack.push(new PickleTuple([pop(), b, c])); break; }
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const items = popMark(); const d = new Map(); setItems(d, items); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x63: { // GLOBAL
        const name = `${line()}.${line()}`;
        const g = globals[name];
        if (!g) fail(`refuses the global ${name}: only tensors, storages and (ordered) dicts are read`);
        stack.push(g!);
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        const g = globals[`${String(module)}.${String(name)}`];
        if (!g) fail(`refuses the global ${String(module)}.${String(name)}: only tensors, storages and (ordered) dicts are read`);
        stack.push(g!);
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop() as PickleGlobal;
        if (!(args instanceof PickleTuple)) fail('REDUCE without an argument tuple');
        if (typeof fn !== 'object' || fn === null || !('global' in fn) || !fn.call) fail(`cannot call ${String((fn as PickleGlobal | null)?.global ?? fn)}`);
        stack.push(fn.call!((args as PickleTuple).items));
        break;
      }
      case 0x51: stack.push(persistentLoad(pop())); break; // BINPERSID
      case 0x62: { // BUILD: state set on an object; an ordered dict's _metadata is not needed
        pop();
        if (!(top() instanceof Map)) fail('BUILD on a value that is not a dict');
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16)}`);
    }
  }
}
