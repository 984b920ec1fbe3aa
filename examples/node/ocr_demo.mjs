// The demo's flow (token, OCR submit, poll) in plain JavaScript (ESM) against the stand-in.
// Run by tests/run/node.sh: tests/standin/with_server.sh node examples/node/ocr_demo.mjs
import { Session } from 'cloudauth';

const base = process.env.STANDIN_URL;
if (!base) throw new Error('STANDIN_URL is not set: run me under tests/standin/with_server.sh');

const session = new Session({ clientId: 'demo-client', clientSecret: 'demo-secret', tokenUrl: `${base}/connect/token`, baseUrl: base });
try {
  const token = await session.token();
  console.log(`token: ${token.length} bytes`);
  const image = Buffer.from('\x89PNG a tiny stand-in image').toString('base64');
  const submitted = await session.post('/v5.0/ocr/RecognizeImage', {
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ image, settings: {} }),
  });
  const task = submitted.text();
  console.log(`task: ${task}`);
  for (;;) {
    const result = (await session.get(`/v5.0/ocr/RecognizeImage?id=${task}`)).json();
    console.log(`poll: ${result.taskStatus}`);
    if (result.taskStatus === 'Completed') {
      console.log(`text: ${Buffer.from(result.results[0].data, 'base64').toString('utf8')}`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
} finally {
  session.close();
}
