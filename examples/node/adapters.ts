// The adapters, type-checked (tsc --noEmit) and run against the stand-in by tests/run/node.sh:
// fetch, an undici dispatcher, axios and the Aspose Words SDK, each adding the session's token.
import * as cloudauth from 'cloudauth';
import { Agent, fetch as undiciFetch } from 'undici';
import axios from 'axios';

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
  console.log('token requests:', session.stats().tokenRequests);
}

main().then(() => session.close(), (e: unknown) => {
  console.error(e instanceof cloudauth.CloudAuthError ? `${e.code}: ${e.message}` : e);
  session.close();
  process.exitCode = 1;
});
