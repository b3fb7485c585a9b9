/* Services page: status changes of every rollout arrive over /ws/rollouts/. */
(function () {
  if (!document.querySelector(".services-table")) return;
  liveSocket("/ws/rollouts/", (msg) => {
    if (msg.type !== "status") return;
    const row = document.querySelector(`tr[data-service="${CSS.escape(msg.service)}"]`);
    if (!row) return;
    const cell = row.querySelector("td.current");
    const finished = ["promoted", "rolled_back", "aborted", "failed"].includes(msg.status);
    const link = `/deployments/rollouts/${msg.rollout}/`;
    if (finished) {
      cell.innerHTML = `<a href="${link}"><span class="badge ${msg.status}" data-role="status">${msg.status}</span> <code></code></a>`;
      cell.querySelector("code").textContent = msg.image_tag;
      if (msg.status === "promoted") row.querySelector(".stable-tag").textContent = msg.image_tag;
      return;
    }
    cell.innerHTML =
      `<a href="${link}"><span class="badge ${msg.status}" data-role="status">${msg.status}</span> → <code></code></a>` +
      `<div class="progress weight" title="canary traffic"><div style="width: ${msg.current_weight}%"></div></div>` +
      `<span class="small muted" data-role="weight">${msg.current_weight}% canary</span>`;
    cell.querySelector("code").textContent = msg.image_tag;
  });
})();
