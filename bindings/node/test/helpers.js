'use strict';
// Test servers on 127.0.0.1: the stand-in (tests/standin/server.py) and the hostile server
// (tests/hostile/server.py), each started per test file and stopped by itself (--lifetime).
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

const ROOT = path.resolve(__dirname, '..', '..', '..');

function startPython(script, args, prefix) {
  const child = spawn('python3', [path.join(ROOT, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.unref();
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`${script} did not start`)), 10000);
    rl.once('line', (line) => {
      clearTimeout(timer);
      if (!line.startsWith(prefix)) return reject(new Error(`${script}: ${line}`));
      resolve({ child, ports: line.split(' ').slice(1).map(Number) });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code})`)));
  });
}

async function standin() {
  const { child, ports } = await startPython('tests/standin/server.py', ['--port', '0', '--lifetime', '300'], 'PORT ');
  const url = `http://127.0.0.1:${ports[0]}`;
  const control = async (what, body) => {
    const r = await globalThis.fetch(`${url}/_control/${what}`, {
      method: body === undefined && what === 'stats' ? 'GET' : 'POST',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return r.json();
  };
  return {
    url,
    options: { clientId: 'demo-client', clientSecret: 'demo-secret', tokenUrl: `${url}/connect/token`, baseUrl: url },
    control,
    stats: () => control('stats'),
    reset: () => control('reset', {}),
    config: (knobs) => control('config', knobs),
    stop: () => child.kill(),
  };
}

async function hostile() {
  const { child, ports } = await startPython('tests/hostile/server.py', ['--lifetime', '300'], 'PORTS ');
  const main = `http://127.0.0.1:${ports[0]}`;
  return {
    main,
    other: `http://127.0.0.1:${ports[1]}`,
    options: { clientId: 'id', clientSecret: 'hostile-secret-value', tokenUrl: `${main}/ok`, baseUrl: main },
    stop: () => child.kill(),
  };
}

module.exports = { ROOT, standin, hostile };
