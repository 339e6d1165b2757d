// Live updates over WebSocket /ws?token=<JWT> (docs/api.md, "WebSocket"): lottery_drawn to
// everyone, the caller's own notifications, ping heartbeats, and resync when the
// server may have missed events. Reconnects with backoff, except when the token
// expired (close code 1008).

const EXPIRED = 1008;

export function connectLive(api, { onDraw, onNotification, onResync, onStatus }) {
  let attempts = 0;
  let connectedBefore = false;

  function open() {
    const socket = new WebSocket(api.websocketUrl());
    socket.addEventListener('open', () => {
      attempts = 0;
      onStatus('on', 'Live: connected');
      if (connectedBefore) onResync(); // events may have gone by while we were away
      connectedBefore = true;
    });
    socket.addEventListener('message', (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.event === 'lottery_drawn') onDraw(message.data);
      else if (message.event === 'notification') onNotification(message.data);
      else if (message.event === 'resync') onResync();
    });
    socket.addEventListener('close', (event) => {
      if (event.code === EXPIRED) {
        onStatus('off', 'Live: the token expired; sign in again');
        return;
      }
      const wait = Math.min(30, 2 ** attempts);
      attempts += 1;
      onStatus('retry', `Live: reconnecting in ${wait} s`);
      setTimeout(open, wait * 1000);
    });
  }

  open();
}
