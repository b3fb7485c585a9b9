// Driven by testing's browser test: window.sdkStart(host, key) then the helpers below.
window.sdkLog = [];

window.sdkStart = function (host, key) {
  posthog.init(key, {
    api_host: host,
    autocapture: false,
    capture_pageview: false,
    capture_pageleave: false,
    disable_session_recording: true,
    disable_surveys: true,
    persistence: "localStorage",
    request_batching: true,
    // Headless Chromium's user agent is on posthog-js's bot list; a real browser's is not.
    opt_out_useragent_filter: true,
  });
  return true;
};

// Local evaluation of every experiment for each user; exposures go through PostHog capture.
// decryptionKey: the key's secret when its payload is served encrypted.
window.sdkEvaluate = async function (host, key, users, experimentKeys, track, decryptionKey) {
  const out = [];
  const gb = new growthbook.GrowthBook({
    apiHost: host,
    clientKey: key,
    decryptionKey: decryptionKey || undefined,
    trackingCallback: function (experiment, result) {
      if (!track) return;
      posthog.capture("experiment_assignment", {
        experiment_id: experiment.key,
        variant: result.value,
      });
    },
  });
  await gb.init({ timeout: 5000 });
  for (const user of users) {
    await gb.setAttributes(Object.assign({ id: user.id }, user.attributes));
    const assigned = {};
    for (const k of experimentKeys) {
      const result = gb.evalFeature(k);
      if (result.source === "experiment") assigned[k] = result.value;
    }
    out.push(assigned);
  }
  return out;
};

window.sdkCapture = function (name, properties) {
  posthog.capture(name, properties);
};
