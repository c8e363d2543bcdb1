// dcmon's live refresh: fetch this page again and swap the parts marked data-live.
// Without JavaScript the page's <noscript> refresh reloads it whole instead.
setInterval(async () => {
  try {
    const page = await fetch(location.href, {headers: {"Accept": "text/html"}});
    // A failed or redirected fetch (e.g. an expired login) leaves the page as it is.
    if (!page.ok || page.redirected) return;
    const doc = new DOMParser().parseFromString(await page.text(), "text/html");
    document.querySelectorAll("[data-live]").forEach(el => {
      const fresh = doc.getElementById(el.id);
      if (fresh) el.replaceWith(fresh);
    });
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) { /* the next tick tries again */ }
}, 5000);
