/* A websocket that reconnects by itself (1 s, 2 s, ... up to 15 s) and shows its state. */
window.liveSocket = function (path, onMessage) {
  const state = document.getElementById("live-state");
  let delay = 1000;
  function setState(name, text) {
    if (state) { state.dataset.state = name; state.textContent = text; }
  }
  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + path);
    ws.onopen = () => { delay = 1000; setState("live", "● live"); };
    ws.onmessage = (e) => onMessage(JSON.parse(e.data));
    ws.onclose = (e) => {
      if (e.code === 4403) { setState("lost", "not allowed to watch"); return; }
      setState("lost", "connection lost: reconnecting…");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  connect();
};

window.csrfToken = function () {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
};
