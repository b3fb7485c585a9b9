/* Rollout page: snapshot then live status, samples and events over /ws/rollouts/<id>/. */
(function () {
  const script = document.currentScript;
  const rolloutId = script.dataset.rollout;
  const thresholds = JSON.parse(document.getElementById("thresholds").textContent);
  const METRICS = ["error_rate", "p99_ms", "request_rate"];
  const COLORS = { stable: "#64748b", canary: "#4f46e5" };
  const FINISHED = ["promoted", "rolled_back", "aborted", "failed"];
  let remainingAt = null;

  function layout(metric) {
    const l = {
      margin: { l: 48, r: 12, t: 8, b: 36 }, showlegend: true,
      legend: { orientation: "h", y: -0.2 }, xaxis: { type: "date" }, yaxis: { rangemode: "tozero" },
      shapes: [],
    };
    const limit = thresholds[metric];
    if (limit !== null && limit !== undefined) {
      l.shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: limit, y1: limit,
        line: { color: "#dc2626", dash: "dash", width: 1.5 } });
      l.annotations = [{ xref: "paper", x: 1, y: limit, text: `limit ${limit}`, showarrow: false,
        xanchor: "right", yanchor: "bottom", font: { color: "#dc2626", size: 11 } }];
    }
    return l;
  }

  function drawCharts(samples) {
    for (const metric of METRICS) {
      const traces = ["stable", "canary"].map((version) => {
        const rows = samples.filter((s) => s.version === version);
        return { name: version, mode: "lines+markers", line: { color: COLORS[version] },
          x: rows.map((s) => s.at), y: rows.map((s) => s[metric]) };
      });
      Plotly.react(`chart-${metric}`, traces, layout(metric), { displayModeBar: false, responsive: true });
    }
  }

  function addSample(s) {
    const index = s.version === "stable" ? 0 : 1;
    for (const metric of METRICS) {
      Plotly.extendTraces(`chart-${metric}`, { x: [[s.at]], y: [[s[metric]]] }, [index], 2000);
    }
  }

  function fmt(v) { return v === null || v === undefined ? "—" : Number(v).toPrecision(4).replace(/\.?0+$/, ""); }

  function cell(tag, text, className) {
    const el = document.createElement(tag);
    el.textContent = text;
    if (className) el.className = className;
    return el;
  }

  function badge(text, className, title) {
    const el = cell("span", text, `badge ${className}`);
    if (title) el.title = title;
    return el;
  }

  function range(c) {
    const low = c.min !== undefined ? c.min : null;
    const high = c.max !== undefined ? c.max : c.threshold;
    if ((low === null || low === undefined) && (high === null || high === undefined)) return "no range";
    return `${low === null || low === undefined ? "−∞" : fmt(low)} … ${high === null || high === undefined ? "∞" : fmt(high)} ${c.unit || ""}`;
  }

  function pval(v) { return v === null || v === undefined ? "—" : Number(v).toPrecision(2); }

  function pct(v) { return v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`; }

  // A product metric (store kind): the users behind it and the sequential test's answer.
  function storeDetail(c) {
    const d = c.detail;
    const tr = document.createElement("tr");
    tr.className = "store-detail";
    let text = `${d.describe}: ${d.canary_users} canary vs ${d.stable_users} stable users`;
    if (d.both_users) text += ` (${d.both_users} served by both, left out)`;
    if (d.lift !== null && d.lift !== undefined) {
      const ci = d.ci ? ` [${pct(d.ci[0])}, ${pct(d.ci[1])}]` : "";
      text += `; lift ${d.lift > 0 ? "+" : ""}${pct(d.lift)}${ci}, sequential p ${pval(d.p_value)}`;
    }
    if (d.srm_p_value !== null && d.srm_p_value !== undefined) {
      text += `; users' split vs traffic p ${pval(d.srm_p_value)}`;
    }
    const td = cell("td", text, "small muted");
    td.colSpan = 7;
    tr.appendChild(td);
    return tr;
  }

  function renderJudgement(j) {
    const body = document.querySelector("#judgement tbody");
    if (!j || !j.checks || !j.checks.length) return;
    body.replaceChildren();
    for (const c of j.checks) {
      const tr = document.createElement("tr");
      tr.dataset.template = c.metric;
      const name = cell("td", `${c.metric} `);
      name.appendChild(badge(c.kind || "prometheus", "kind"));
      if (c.dry_run) {
        name.append(" ");
        name.appendChild(badge("dry-run", "dry-run", "measured and shown, never decides"));
      }
      const verdict = c.verdict === "no_data" ? "inconclusive" : c.verdict;
      tr.append(
        name,
        cell("td", verdict, `verdict-${verdict}`),
        cell("td", fmt(c.value), "num"),
        cell("td", fmt(c.stable), "num"),
        cell("td", range(c), "small"),
        cell("td", c.failure_limit ? `${c.failures}/${c.failure_limit}` : "", "num"),
        cell("td", c.inconclusive_limit ? `${c.inconclusive}/${c.inconclusive_limit}` : "", "num"),
      );
      if (c.why) tr.title = c.why;
      body.appendChild(tr);
      if (c.kind === "store" && c.detail && c.detail.describe) body.appendChild(storeDetail(c));
    }
    const stat = j.statistical;
    if (!stat) return;
    const head = document.createElement("tr");
    const score = stat.score === null ? "no score" : `score ${Math.round(stat.score)}`;
    const th = cell("th", `Statistical judge (last step): ${score}, ${stat.decision}`);
    th.colSpan = 7;
    head.appendChild(th);
    body.appendChild(head);
    for (const m of stat.metrics) {
      const tr = document.createElement("tr");
      const verdict = m.failed ? "fail" : m.classification === "nodata" ? "inconclusive" : "pass";
      const ratio = m.effect_size === null ? "" : ` ×${fmt(m.effect_size)}`;
      const name = cell("td", `${m.metric} `);
      if (m.dry_run) name.appendChild(badge("dry-run", "dry-run"));
      const p = cell("td", `p ${fmt(m.p_value)} · weight ${fmt(m.weight)}`, "small");
      p.colSpan = 3;
      tr.append(name, cell("td", `${m.classification}${ratio}`, `verdict-${verdict}`),
        cell("td", fmt(m.canary), "num"), cell("td", fmt(m.stable), "num"), p);
      if (m.why) tr.title = m.why;
      body.appendChild(tr);
    }
  }

  function renderStatus(st) {
    const badge = document.getElementById("status-badge");
    badge.className = `badge big ${st.status}`;
    badge.textContent = st.status;
    document.getElementById("weight-bar").style.width = `${st.current_weight}%`;
    document.getElementById("weight-text").textContent = `${st.current_weight}%`;
    document.getElementById("phase-text").textContent = `phase: ${st.phase}`;
    document.getElementById("reason").textContent = st.reason || "";
    const finished = FINISHED.includes(st.status);
    document.querySelectorAll("#stepbar .step[data-index]").forEach((el) => {
      const i = Number(el.dataset.index);
      el.classList.toggle("done", i < st.current_step || st.status === "promoted");
      el.classList.toggle("current", i === st.current_step && !finished);
    });
    document.querySelector("#stepbar .step.promote").classList.toggle("done", st.status === "promoted");
    const actions = document.getElementById("actions");
    if (actions) {
      actions.querySelectorAll("button[data-action]").forEach((b) => {
        b.hidden = !st.actions.includes(b.dataset.action);
        b.disabled = false;
      });
    }
    renderJudgement(st.judgement);
    remainingAt = null;
    if (st.status === "paused" && st.pause_until) remainingAt = new Date(st.pause_until);
    else if (st.phase === "analyze" && st.next_tick_at && !finished) remainingAt = estimateEnd(st);
    tickRemaining();
  }

  let analysis = null;
  function estimateEnd(st) {
    if (!analysis) return null;
    const left = analysis.samples_per_step - st.samples_in_step;
    return new Date(new Date(st.next_tick_at).getTime() + (left - 1) * analysis.interval_seconds * 1000);
  }

  function tickRemaining() {
    const el = document.getElementById("remaining");
    if (!remainingAt) { el.textContent = ""; return; }
    const s = Math.max(0, (remainingAt - new Date()) / 1000);
    el.textContent = `~${s.toFixed(0)} s left in this step`;
  }
  setInterval(tickRemaining, 1000);

  function addEvent(e, prepend = true) {
    const list = document.getElementById("timeline");
    const empty = list.querySelector("li.muted");
    if (empty) empty.remove();
    const li = document.createElement("li");
    li.className = `ev-${e.kind}`;
    const time = new Date(e.at).toLocaleTimeString([], { hour12: false });
    li.innerHTML = `<time></time> <span class="badge"></span> <span class="m"></span>`;
    li.querySelector("time").textContent = time;
    li.querySelector(".badge").textContent = e.kind;
    li.querySelector(".m").textContent = e.message + (e.actor && e.actor !== "engine" ? `  (by ${e.actor})` : "");
    if (prepend) list.prepend(li); else list.appendChild(li);
  }

  function showMessage(text, kind = "error") {
    const box = document.getElementById("messages");
    const li = document.createElement("div");
    li.className = `msg ${kind}`;
    li.textContent = text;
    box.replaceChildren(li);
  }

  liveSocket(`/ws/rollouts/${rolloutId}/`, (msg) => {
    if (msg.type === "snapshot") {
      analysis = msg.analysis;
      drawCharts(msg.samples);
      document.getElementById("timeline").innerHTML = "";
      msg.events.slice().reverse().forEach((e) => addEvent(e, false));
      renderStatus(msg.status);
    } else if (msg.type === "sample") {
      addSample(msg);
    } else if (msg.type === "status") {
      renderStatus(msg);
    } else if (msg.type === "event") {
      addEvent(msg.event);
    }
  });

  const actions = document.getElementById("actions");
  if (actions) {
    actions.addEventListener("click", async (ev) => {
      const button = ev.target.closest("button[data-action]");
      if (!button) return;
      const action = button.dataset.action;
      let body = {};
      if (action === "abort") {
        const reason = window.prompt("Why abort this rollout? (traffic goes back to stable at once)");
        if (reason === null) return;
        body = { reason };
      }
      button.disabled = true;
      try {
        const resp = await fetch(`${actions.dataset.api}${action}/`, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify(body),
        });
        const data = await resp.json().catch(() => ({}));
        if (!resp.ok) {
          const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || data);
          showMessage(`${action} refused: ${detail}`);
        } else if (action === "retry") {
          location.href = `/deployments/rollouts/${data.id}/`;
        } else {
          showMessage(`${action} requested`, "success");
        }
      } catch (err) {
        showMessage(`${action} failed: the console could not be reached`);
      } finally {
        button.disabled = false;
      }
    });
  }

  drawCharts([]);  // empty axes and limits until the snapshot arrives
  renderStatus(JSON.parse(document.getElementById("initial-status").textContent));
})();
