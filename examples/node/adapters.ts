// The adapters, type-checked (tsc --noEmit) and run against the stand-in by tests/run/node.sh:
// fetch, an undici dispatcher, axios and the Aspose Words SDK, each adding the session's token.
import * as cloudauth from 'cloudauth';
import { Agent, fetch as undiciFetch } from 'undici';
import axios from 'axios';
import { Readable } from 'node:stream';

const base = process.env.STANDIN_URL ?? '';
const session = new cloudauth.Session({ clientId: 'demo-client', clientSecret: 'demo-secret', tokenUrl: `${base}/connect/token`, baseUrl: base });

async function main(): Promise<void> {
  const authFetch = cloudauth.fetch(session);
  console.log('fetch:', (await authFetch(`${base}/echo`, { method: 'POST', body: 'hi' })).status);

  const dispatcher = new Agent().compose(cloudauth.undiciInterceptor(session));
  console.log('undici:', (await undiciFetch(`${base}/echo`, { dispatcher })).status);
  await dispatcher.close();

  const client = axios.create({ baseURL: base });
  cloudauth.axiosInterceptors(session, client);
  console.log('axios:', (await client.get('/echo')).status);

  // Streamed bodies through the session itself: an upload read from a stream (a factory, so
  // that it can be sent again after a 401), and a download read as it arrives.
  const up = await session.post('/echo', { body: () => Readable.from([Buffer.from('streamed '), 'upload']), contentLength: 15 });
  console.log('stream upload:', up.status, up.text());
  const down = await session.get('/big?bytes=1000000', { stream: true });
  let got = 0;
  for await (const piece of down.body) got += (piece as Buffer).length;
  console.log('stream download:', down.status, got, 'bytes');
  console.log('token requests:', session.stats().tokenRequests);
}

main().then(() => session.close(), (e: unknown) => {
  console.error(e instanceof cloudauth.CloudAuthError ? `${e.code}: ${e.message}` : e);
  session.close();
  process.exitCode = 1;
});
