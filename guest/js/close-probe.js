// `close-probe` in JavaScript: the step interpreter of guest/close-probe (the
// Rust reference guest), built with componentize-js for the
// `wsbox:websocket/client-command` world.
//
//     close-probe URL [--protocol P]... [--header NAME=VALUE]... [STEP]...
//
// Each step prints one line, `<step> -> <result>`, formatted exactly as the
// Rust guest does (strings quoted as Rust's `{:?}` quotes them); the first
// line is the connect. Without steps the default tour runs. Steps:
// `send-text:STR`, `send-binary:N` (byte i = i % 251), `ping[:STR]`, `recv`,
// `recv-until-close`, `close`, `close:CODE[:REASON]`, `close-reason-only:R`,
// the same three for `shutdown`, `abort`, `query`, `protocol`, `drop`.
// Fragments, `sleep` and the hostile steps are only in the Rust guest.

import { Websocket } from 'wsbox:websocket/types@0.1.0';
import { getArguments } from 'wasi:cli/environment@0.2.12';

const DEFAULT_TOUR = ['query', 'send-text:hello', 'recv', 'close:1000:bye', 'query', 'query'];
const USAGE = 'usage: close-probe URL [--protocol P]... [--header NAME=VALUE]... [STEP]...';

class UsageError extends Error {}

/** A string quoted as Rust's `{:?}` quotes it (for the printable and control
 * characters a test sends). */
function rustDebug(text) {
  let out = '"';
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c === 0) out += '\\0';
    else if (c < 0x20 || c === 0x7f) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}

/** The payload of a WIT `result` error, which the bindings throw. */
function payload(e) {
  return e !== null && typeof e === 'object' && 'payload' in e ? e.payload : e;
}

/** `invalid-parameter: DETAIL`, `handshake-rejected: 403`, `closed`. */
function describeError(error) {
  if (error === null || typeof error !== 'object' || !('tag' in error)) {
    // Not a WIT error: a bug in this guest; let it trap.
    throw error;
  }
  return error.val === undefined ? error.tag : `${error.tag}: ${error.val}`;
}

const err = (e) => `err(${describeError(payload(e))})`;
const describeStatus = (status) => `${status.code} ${rustDebug(status.reason)}`;

function pattern(length) {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = i % 251;
  return data;
}

function isPattern(data) {
  for (let i = 0; i < data.length; i++) if (data[i] !== i % 251) return false;
  return true;
}

/** Receives once; returns [result text, whether it was a message]. */
function incoming(ws) {
  let got;
  try {
    got = ws.receive();
  } catch (e) {
    return [err(e), false];
  }
  if (got.tag === 'close') return [`ok(close ${describeStatus(got.val)})`, false];
  const message = got.val;
  if (message.tag === 'text') return [`ok(text ${rustDebug(message.val)})`, true];
  const data = message.val;
  return [`ok(binary ${data.length} bytes ${isPattern(data) ? 'ok' : 'corrupt'})`, true];
}

function done(call) {
  try {
    call();
  } catch (e) {
    return err(e);
  }
  return 'ok';
}

function say(step, result) {
  console.log(`${step} -> ${result}`);
}

/** `close`, `close:CODE`, `close:CODE:REASON`, `close-reason-only:R`; the
 * same for shutdown. `null` if malformed. */
function closing(ws, name, arg) {
  const call = name.startsWith('shutdown') ? (c, r) => ws.shutdown(c, r) : (c, r) => ws.close(c, r);
  if (name.endsWith('-reason-only')) return () => done(() => call(undefined, arg));
  if (arg === undefined) return () => done(() => call(undefined, ''));
  const colon = arg.indexOf(':');
  const code = colon < 0 ? arg : arg.slice(0, colon);
  const reason = colon < 0 ? '' : arg.slice(colon + 1);
  if (!/^[0-9]+$/.test(code) || Number(code) > 0xffff) return null;
  return () => done(() => call(Number(code), reason));
}

/** The step's action, a function returning its result text; `null` if the
 * step is unknown or malformed. */
function stepAction(ws, text) {
  const colon = text.indexOf(':');
  const name = colon < 0 ? text : text.slice(0, colon);
  const arg = colon < 0 ? undefined : text.slice(colon + 1);
  switch (name) {
    case 'send-text':
      return arg === undefined ? null : () => done(() => ws.send({ tag: 'text', val: arg }));
    case 'send-binary':
      return arg === undefined || !/^[0-9]+$/.test(arg)
        ? null
        : () => done(() => ws.send({ tag: 'binary', val: pattern(Number(arg)) }));
    case 'ping':
      return () => done(() => ws.ping(new TextEncoder().encode(arg ?? '')));
    case 'recv':
      return arg === undefined ? () => incoming(ws)[0] : null;
    case 'close':
    case 'shutdown':
      return closing(ws, name, arg);
    case 'close-reason-only':
    case 'shutdown-reason-only':
      return arg === undefined ? null : closing(ws, name, arg);
    case 'abort':
      return arg === undefined
        ? () => {
            ws.abort();
            return 'ok';
          }
        : null;
    case 'query':
      return arg === undefined
        ? () => {
            try {
              return `ok(${describeStatus(ws.queryCloseStatus())})`;
            } catch (e) {
              return `err(${payload(e).tag})`;
            }
          }
        : null;
    case 'protocol':
      return arg === undefined
        ? () => {
            const p = ws.protocol();
            return p === undefined ? 'none' : `some(${p})`;
          }
        : null;
    default:
      return null;
  }
}

function main(args) {
  if (args.length === 0) throw new UsageError('missing URL');
  const url = args[0];
  let rest = args.slice(1);
  const protocols = [];
  const headers = [];
  while (rest.length >= 2 && (rest[0] === '--protocol' || rest[0] === '--header')) {
    const [flag, value] = rest;
    if (flag === '--protocol') {
      protocols.push(value);
    } else {
      const eq = value.indexOf('=');
      if (eq < 0) throw new UsageError('--header takes NAME=VALUE');
      headers.push([value.slice(0, eq), value.slice(eq + 1)]);
    }
    rest = rest.slice(2);
  }
  if (rest.length === 1 && (rest[0] === '--protocol' || rest[0] === '--header')) {
    throw new UsageError(`${rest[0]} needs a value`);
  }
  const steps = rest.length > 0 ? rest : DEFAULT_TOUR;

  let ws;
  try {
    ws = Websocket.connect(url, { protocols, headers });
  } catch (e) {
    say('connect', err(e));
    return 0;
  }
  say('connect', `ok protocol=${ws.protocol() ?? 'none'}`);

  for (const text of steps) {
    // Unknown steps end the run even after `drop`, as in the Rust guest.
    if (text !== 'drop' && text !== 'recv-until-close' && stepAction({}, text) === null) {
      say(text, 'err(unknown step)');
      return 2;
    }
    if (ws === null) {
      say(text, 'skipped (dropped)');
      continue;
    }
    if (text === 'drop') {
      ws[Symbol.dispose]();
      ws = null;
      say(text, 'ok');
      continue;
    }
    if (text === 'recv-until-close') {
      for (;;) {
        const [result, more] = incoming(ws);
        say(text, result);
        if (!more) break;
      }
      continue;
    }
    say(text, stepAction(ws, text)());
  }
  return 0;
}

export const run = {
  run() {
    let status;
    try {
      // The first argument is the program's name.
      status = main(getArguments().slice(1));
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      console.error(`close-probe: ${e.message}\n${USAGE}`);
      status = 2;
    }
    // WASI 0.2 carries only success or failure: a thrown value is failure.
    if (status !== 0) throw new Error(`close-probe: exit status ${status}`);
  },
};
