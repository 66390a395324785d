// GET /version on the controller (port 8082, as NGINX Service Mesh): the versions of the mesh's
// components, {"<component>": ["<version>", …]}, which `nginx-meshctl version` reads through
// the API server's service proxy; and GET /sidecars, the generation of the mesh configuration in
// force and every sidecar's last acknowledgement (404 until this replica publishes). /sidecars
// names every tenant's pods and their errors, so it answers only a request that carries the
// token of the Secret CONTROLLER_REPORT_SECRET_NAME in CONTROLLER_REPORT_TOKEN_HEADER: any pod
// reaches this port, but only those RBAC lets read that Secret learn the token.
import { createHash, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import {
  CONTROLLER_REPORT_SECRET_NAME,
  CONTROLLER_REPORT_TOKEN_HEADER,
} from '../../manifests/constants';
import { closeServer, listen } from '../listen';

export interface VersionServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Compares in time independent of where the values differ (and of their lengths). */
function sameToken(given: string, expected: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

type Answer = { readonly status: number; readonly body: string };

const json = (body: object): Answer => ({ status: 200, body: JSON.stringify(body) });
const text = (status: number, body: string): Answer => ({ status, body: `${body}\n` });

function answerSidecars(
  req: http.IncomingMessage,
  token: string | undefined,
  report: object | undefined,
): Answer {
  if (token === undefined) {
    return text(
      503,
      `the sidecar report's token (Secret ${CONTROLLER_REPORT_SECRET_NAME}) is not ready`,
    );
  }
  const given = req.headers[CONTROLLER_REPORT_TOKEN_HEADER];
  if (typeof given !== 'string' || !sameToken(given, token)) {
    return text(
      401,
      `GET /sidecars needs header ${CONTROLLER_REPORT_TOKEN_HEADER} with the token of Secret ${CONTROLLER_REPORT_SECRET_NAME}`,
    );
  }
  return report === undefined ? text(404, 'not found') : json(report);
}

export async function startVersionServer(options: {
  readonly host: string;
  readonly port: number;
  readonly versions: () => Readonly<Record<string, readonly string[]>>;
  readonly sidecars?: () => object | undefined;
  /** The token /sidecars asks for; undefined until it is known (then /sidecars answers 503). */
  readonly reportToken: () => string | undefined;
}): Promise<VersionServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer =
      req.method !== 'GET' && req.method !== 'HEAD'
        ? text(404, 'not found')
        : path === '/version'
          ? json(options.versions())
          : path === '/sidecars'
            ? answerSidecars(req, options.reportToken(), options.sidecars?.())
            : text(404, 'not found');
    const type = answer.status === 200 ? 'application/json' : 'text/plain';
    res.writeHead(answer.status, { 'Content-Type': type }).end(answer.body);
  });
  const port = await listen(server, options.port, options.host);
  return { port, close: () => closeServer(server) };
}
