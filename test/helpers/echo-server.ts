/**
 * A backend for the ingress tests, run as a process task: GET /headers answers what it was asked
 * (path and headers) as JSON; /ws is a WebSocket echo. Listens where the process runtime says.
 */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ noServer: true });
wss.on('connection', (socket) =>
  socket.on('message', (data, binary) => socket.send(data, { binary })),
);

const server = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ task: process.env.MESH_TASK, path: req.url, headers: req.headers }));
});
server.on('upgrade', (req, socket, head) => {
  if (req.url !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
server.listen(Number(process.env.PORT), process.env.MESH_HOST);
