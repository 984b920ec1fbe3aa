// Starts oidc-provider (provider.mjs) and the resource server (resource_server.mjs) on
// ephemeral 127.0.0.1 ports, with the material of make_material.sh, and prints one JSON line:
// {"issuer", "mtls", "api", "api_other", "control"}. The control listener (plain http, loopback) answers
// GET /records (what the provider and the API saw: assertion and proof headers and claims,
// never a signature or a secret) and POST /reset.
// Exits by itself after --lifetime seconds, and as soon as its stdin closes (its parent died).
//
//   node servers.mjs --material DIR [--lifetime 300]
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import { startProvider } from './provider.mjs';
import { startResourceServer } from './resource_server.mjs';

const { values } = parseArgs({
  options: { material: { type: 'string' }, lifetime: { type: 'string', default: '300' } },
});
if (!values.material) {
  console.error('usage: node servers.mjs --material DIR [--lifetime SECONDS]');
  process.exit(2);
}
const lifetimeMs = Math.max(1, Number(values.lifetime)) * 1000;
setTimeout(() => process.exit(0), lifetimeMs);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

let records = [];
const record = (kind, client, data) => { records.push({ kind, client, ...data }); };

const dir = values.material;
const provider = await startProvider({ dir, record, lifetimeMs });
const api = await startResourceServer({ dir, issuer: provider.issuer, record, lifetimeMs });

const control = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/reset') {
    records = [];
    res.writeHead(204).end();
  } else if (req.method === 'GET' && req.url === '/records') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(records));
  } else {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => control.listen(0, '127.0.0.1', ok));

process.stdout.write(`${JSON.stringify({
  issuer: provider.issuer,
  mtls: provider.mtlsOrigin,
  api: api.url,
  api_other: api.other,
  control: `http://127.0.0.1:${control.address().port}`,
})}\n`);
