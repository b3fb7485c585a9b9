// Broadcast page: while it is sending, reload every few seconds so progress and counts move.
(function () {
  "use strict";
  const box = document.querySelector(".broadcast-progress");
  if (!box || box.dataset.state !== "sending") return;
  setTimeout(() => window.location.reload(), 3000);
})();
