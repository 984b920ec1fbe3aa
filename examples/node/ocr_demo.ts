// The demo's flow in TypeScript with the Node.js binding: a token, an OCR task submitted, its
// result polled, all against the local stand-in (tests/standin). Run by tests/run/node.sh:
//   node --experimental-strip-types examples/node/ocr_demo.ts   (or the .mjs twin below)
// Environment: STANDIN_URL (set by tests/standin/with_server.sh).
import { Session, type Response } from 'cloudauth';

const base = process.env.STANDIN_URL;
if (!base) throw new Error('STANDIN_URL is not set: run me under tests/standin/with_server.sh');

interface OcrResult {
  taskStatus: string;
  results: { type: string; data: string }[];
}

async function main(): Promise<void> {
  using session = new Session({
    clientId: 'demo-client', clientSecret: 'demo-secret', tokenUrl: `${base}/connect/token`, baseUrl: base,
  });
  session.on('event', (e) => console.log(`event: ${e.kind} (${e.reason || e.result}) in ${e.durationMs} ms`));
  const token = await session.token();
  console.log(`token: ${token.length} bytes, expires in ${Math.round(session.stats().tokenExpiresInMs / 1000)} s`);

  const image = Buffer.from('\x89PNG a tiny stand-in image').toString('base64');
  const submitted: Response = await session.request('POST', '/v5.0/ocr/RecognizeImage', {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ image, settings: { language: 'English' } }),
  });
  if (submitted.status !== 200) throw new Error(`submit: HTTP ${submitted.status}`);
  const task = submitted.text();
  console.log(`task: ${task}`);

  for (let i = 0; i < 10; i++) {
    const r = await session.request('GET', `/v5.0/ocr/RecognizeImage?id=${encodeURIComponent(task)}`);
    const result = r.json<OcrResult>();
    console.log(`poll ${i + 1}: ${result.taskStatus}`);
    if (result.taskStatus === 'Completed') {
      console.log(`text: ${Buffer.from(result.results[0].data, 'base64').toString('utf8')}`);
      console.log(`token requests: ${session.stats().tokenRequests}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the task did not complete');
}

main().catch((e: unknown) => {
  console.error(`ocr_demo: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
