// dcmon's action page: streams the command's output as it arrives (server-sent events).
// Without JavaScript the page reloads itself every 2 s until the command has ended.
(() => {
  const status = document.getElementById("status");
  if (!status || status.dataset.done) return;
  const output = document.getElementById("output");
  output.textContent = "";
  const events = new EventSource("/actions/" + status.dataset.action + "/events");
  events.addEventListener("output", e => { output.textContent += JSON.parse(e.data); });
  events.addEventListener("done", e => {
    const end = JSON.parse(e.data);
    status.textContent = end.status + (end.exit_code === null ? "" : " (exit " + end.exit_code + ")");
    status.className = end.status === "ok" ? "ok" : "crit";
    events.close();
  });
})();
