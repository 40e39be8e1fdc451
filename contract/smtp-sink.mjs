// A real SMTP server for jit's e-mail notification tests: npm `smtp-server`
// (pinned in package-lock.json), on loopback, taking every message and
// appending it to a file as one JSON line: {from, to, raw}.
//
// Usage: node smtp-sink.mjs OUT.jsonl
// Prints `listening on PORT` once it answers.

import fs from 'node:fs';
import { SMTPServer } from 'smtp-server';

const out = process.argv[2];
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      fs.appendFileSync(out, `${JSON.stringify({
        from: session.envelope.mailFrom && session.envelope.mailFrom.address,
        to: session.envelope.rcptTo.map((r) => r.address),
        raw: Buffer.concat(chunks).toString('utf8'),
      })}\n`);
      callback();
    });
  },
});
server.listen(0, '127.0.0.1', () => console.log(`listening on ${server.server.address().port}`));
