// Models page: calibration and feature-importance charts, retrain buttons with live progress.
(function () {
  "use strict";
  const charts = JSON.parse(document.getElementById("model-charts").textContent);
  const layout = (title, extra) => Object.assign({
    title: { text: title, font: { size: 14 } }, margin: { l: 150, r: 20, t: 40, b: 40 }, height: 320,
  }, extra || {});

  Object.entries(charts).forEach(([kind, chart]) => {
    const cal = document.getElementById("calibration-" + kind);
    if (cal && chart.calibration) {
      Plotly.newPlot(cal, [
        { x: [0, 1], y: [0, 1], mode: "lines", name: "perfect", line: { dash: "dot", color: "#98a2b3" } },
        { x: chart.calibration.mean_predicted, y: chart.calibration.fraction_positive,
          mode: "lines+markers", name: "v" + chart.version },
      ], layout("Calibration (validation, v" + chart.version + ")", {
        margin: { l: 50, r: 20, t: 40, b: 40 },
        xaxis: { title: { text: "mean predicted probability" }, range: [0, 1] },
        yaxis: { title: { text: "observed fraction" }, range: [0, 1] },
      }), { displayModeBar: false, responsive: true });
    }
    const imp = document.getElementById("importance-" + kind);
    if (imp && chart.importances) {
      const items = Object.entries(chart.importances).slice(0, 12).reverse();
      Plotly.newPlot(imp, [{ type: "bar", orientation: "h", x: items.map((i) => i[1]), y: items.map((i) => i[0]) }],
        layout("Permutation importance (v" + chart.version + ")"), { displayModeBar: false, responsive: true });
    }
  });

  function csrf() {
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function render(box, run) {
    box.dataset.run = run.id;
    box.innerHTML = '<span class="badge ' + run.state + '">' + run.state + '</span> <span class="run-stage">' +
      run.stage + '</span><div class="progress"><div class="bar" style="width:' + run.progress + '%"></div></div>' +
      (run.error ? '<div class="msg error"></div>' : "");
    if (run.error) box.querySelector(".msg").textContent = run.error;
  }

  function poll(box) {
    fetch("/api/insights/runs/" + box.dataset.run + "/", { credentials: "same-origin" })
      .then((r) => r.json())
      .then((run) => {
        render(box, run);
        if (run.state === "queued" || run.state === "running") setTimeout(() => poll(box), 1000);
        else if (run.state === "succeeded") window.location.reload();
        else { const b = document.querySelector('[data-retrain="' + box.dataset.kind + '"]'); if (b) b.disabled = false; }
      })
      .catch(() => setTimeout(() => poll(box), 3000));
  }

  document.querySelectorAll("[data-retrain]").forEach((button) => {
    button.addEventListener("click", () => {
      const kind = button.dataset.retrain;
      const box = document.querySelector('.retrain-progress[data-kind="' + kind + '"]');
      button.disabled = true;
      fetch("/api/insights/models/" + kind + "/retrain/", {
        method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf() },
      }).then((r) => r.json().then((body) => ({ ok: r.ok, body })))
        .then(({ ok, body }) => {
          if (ok) { render(box, body); poll(box); return; }
          box.innerHTML = '<div class="msg error"></div>';
          box.querySelector(".msg").textContent = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
          button.disabled = false;
        });
    });
  });

  document.querySelectorAll(".retrain-progress[data-run]").forEach((box) => {
    if (box.querySelector(".badge.queued, .badge.running")) poll(box);
  });
})();
