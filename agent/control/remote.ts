import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { LimitedLog } from '../../mesh/limited-log.js';
import type { RequestRoute } from '../../mesh/transport/listener.js';
import type { Operators } from '../cluster/operators.js';
import type { ControlServer } from './server.js';

/** Where the control API is served to operators, on the node's cluster port. */
export const REMOTE_PREFIX = '/control';

/**
 * The control API for operators elsewhere (`mesh --context FILE`): the same routes as the local
 * socket, on the node's TLS port, for a client certificate in the operator role that the cluster
 * recorded and has not revoked, checked at every request. Everything else is refused with why,
 * and logged; each command is logged with the operator who gave it.
 */
export function remoteControl(
  server: ControlServer,
  operators: Operators,
  log: Logger,
): RequestRoute {
  const refusals = new LimitedLog(log, 10);
  const refuse = (
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    why: string,
  ) => {
    const remote = request.socket.remoteAddress ?? 'client';
    refusals.warn(remote, { remote, reason: why }, 'operator request refused');
    response
      .writeHead(status, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: why }));
  };
  return {
    prefix: `${REMOTE_PREFIX}/`,
    accept: (request, response) => {
      const tls = request.socket as TLSSocket;
      const cert = tls.getPeerCertificate();
      if (!cert || Object.keys(cert).length === 0)
        return refuse(
          request,
          response,
          401,
          'a client certificate is required: an operator\'s ("mesh operator add NAME" on a manager)',
        );
      if (!tls.authorized)
        return refuse(
          request,
          response,
          403,
          `certificate not accepted: ${String(tls.authorizationError)}`,
        );
      const refusal = operators.refusal(cert);
      if (refusal) return refuse(request, response, 403, refusal);
      request.url = (request.url ?? '').slice(REMOTE_PREFIX.length);
      log.info(
        {
          operator: cert.subject.CN,
          remote: request.socket.remoteAddress,
          route: `${request.method} ${request.url.split('?')[0]}`,
        },
        'operator request',
      );
      void server.answer(request, response);
    },
  };
}
