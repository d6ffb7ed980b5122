// Node `ws` test peer for the wsbox end-to-end tests, with permessage-deflate.
//
//   node peer.js server
//   node peer.js client URL ITEM...
//
// NODE_DEFLATE, a JSON object, is ws's `perMessageDeflate` option (default
// `{}`: on, with ws's defaults, threshold 1024 included), e.g.
// NODE_DEFLATE='{"serverNoContextTakeover": true, "threshold": 0}'.
//
// Events go to stdout, one JSON object per line:
//   {"event": "listening", "port": N}                        (server, first)
//   {"event": "connect", "offer": "..." | null, "answer": "..." | null,
//    "extensions": "permessage-deflate" | "", "params": {...} | null}
//       "offer" and "answer" are the Sec-WebSocket-Extensions headers of the
//       request and the response; "params" the negotiated parameters as ws
//       holds them (RFC 7692 names; true for a parameter without a value).
//   {"event": "message", "type": "text" | "binary", "len": N, "pattern_ok": bool}
//       text: the text pattern (the 64-byte JSON-like record of
//       tests/peers/peer.py, repeated and cut); binary: byte i is i % 251.
//   {"event": "closed", "code": N, "reason": "..."}
//   {"event": "error", "error": "..."}
//
// Server: echoes every message with its type, and answers a close with its
// code (ws does). Client: for each ITEM (`text:N` or `binary:N`) sends the
// message and waits for one, then closes with 1000 "node done" and exits
// once the connection is closed.

'use strict';
const { WebSocket, WebSocketServer } = require('ws');

const TEXT_RECORD = '{"id":12345,"user":"wsbox","tags":["a","b"],"ok":true,"n":0.25}\n';

function textPattern(n) {
  return TEXT_RECORD.repeat(Math.floor(n / TEXT_RECORD.length) + 1).slice(0, n);
}

function pattern(n) {
  const bytes = Buffer.alloc(n);
  for (let i = 0; i < n; i++) bytes[i] = i % 251;
  return bytes;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function deflateOptions() {
  return process.env.NODE_DEFLATE ? JSON.parse(process.env.NODE_DEFLATE) : {};
}

function negotiated(ws) {
  const ext = ws._extensions && ws._extensions['permessage-deflate'];
  return ext ? ext.params : null;
}

function report(data, isBinary) {
  if (isBinary) {
    emit({ event: 'message', type: 'binary', len: data.length, pattern_ok: data.equals(pattern(data.length)) });
  } else {
    const text = data.toString('utf8');
    emit({ event: 'message', type: 'text', len: data.length, pattern_ok: text === textPattern(data.length) });
  }
}

function server() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflateOptions() });
  let answer = null;
  wss.on('headers', (headers) => {
    const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
    answer = line ? line.slice(line.indexOf(':') + 1).trim() : null;
  });
  wss.on('listening', () => emit({ event: 'listening', port: wss.address().port }));
  wss.on('connection', (ws, req) => {
    emit({
      event: 'connect',
      offer: req.headers['sec-websocket-extensions'] || null,
      answer,
      extensions: ws.extensions,
      params: negotiated(ws),
    });
    ws.on('message', (data, isBinary) => {
      report(data, isBinary);
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code, reason) => emit({ event: 'closed', code, reason: reason.toString() }));
    ws.on('error', (e) => emit({ event: 'error', error: String(e.message) }));
  });
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
}

function message(item) {
  const [kind, n] = item.split(':');
  if (kind === 'text') return { data: textPattern(Number(n)), binary: false };
  if (kind === 'binary') return { data: pattern(Number(n)), binary: true };
  throw new Error(`unknown item ${item}`);
}

function client(url, items) {
  const ws = new WebSocket(url, { perMessageDeflate: deflateOptions() });
  let answer = null;
  ws.on('upgrade', (res) => {
    answer = res.headers['sec-websocket-extensions'] || null;
  });
  ws.on('unexpected-response', (_req, res) => {
    emit({ event: 'error', error: `HTTP ${res.statusCode}` });
    process.exit(0);
  });
  ws.on('error', (e) => {
    emit({ event: 'error', error: String(e.message) });
    process.exit(0);
  });
  ws.on('open', () => {
    emit({ event: 'connect', offer: null, answer, extensions: ws.extensions, params: negotiated(ws) });
    let next = 0;
    const sendNext = () => {
      if (next === items.length) {
        ws.close(1000, 'node done');
        return;
      }
      const { data, binary } = message(items[next++]);
      ws.send(data, { binary });
    };
    ws.on('message', (data, isBinary) => {
      report(data, isBinary);
      sendNext();
    });
    sendNext();
  });
  ws.on('close', (code, reason) => {
    emit({ event: 'closed', code, reason: reason.toString() });
    process.exit(0);
  });
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'server') {
  server();
} else if (mode === 'client' && args.length >= 1) {
  client(args[0], args.slice(1));
} else {
  process.stderr.write('usage: node peer.js server | node peer.js client URL ITEM...\n');
  process.exit(2);
}
