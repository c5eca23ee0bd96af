// Teacher web library: the "fetch from other schools" button shows progress without a reload.
// Plain JavaScript, no libraries; the page works without it (the form posts normally).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.fetch").forEach(function (form) {
    var bar = form.querySelector("progress");
    var out = form.querySelector("output");
    var target = form.dataset.target;
    function poll() {
      fetch("/api/transfers?target=" + encodeURIComponent(target), {credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (items) {
          if (!items.length) { return; }
          var t = items[items.length - 1];
          bar.hidden = false;
          if (t.bytes_total) { bar.max = t.bytes_total; bar.value = t.bytes_done; }
          if (t.state === "done") { out.textContent = form.dataset.done; return; }
          if (t.state === "failed" || t.state === "cancelled") { out.textContent = form.dataset.failed + ": " + (t.error || ""); return; }
          out.textContent = form.dataset.progress + " " + Math.round(t.bytes_done / 1048576) + " MiB" + (t.state === "running" ? "" : " (" + t.state + ")");
          setTimeout(poll, 1000);
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = new URLSearchParams(new FormData(form));
      fetch(form.action, {method: "POST", body: body, credentials: "same-origin",
                          headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } poll(); })
        .catch(function (e) { out.textContent = form.dataset.failed + " (" + e.message + ")"; });
    });
    poll();
  });
});

// "Schools with a copy": filled in after the page loads (a DHT lookup may take seconds).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("section.holders").forEach(function (sec) {
    fetch(sec.dataset.holders, {credentials: "same-origin"}).then(function (r) {
      return r.ok ? r.json() : [];
    }).then(function (items) {
      var list = sec.querySelector("ul"), note = sec.querySelector("p");
      items.forEach(function (h) {
        var li = document.createElement("li");
        li.textContent = h.school ? h.school + " (" + h.school_id + ")" : h.school_id;
        list.appendChild(li);
      });
      note.textContent = items.length ? "" : sec.dataset.none;
    }).catch(function () { sec.querySelector("p").textContent = sec.dataset.none; });
  });
});

// Publish/edit forms: upload progress, the size limit checked before sending, one post only.
// The button is disabled at the first submit; the server also publishes a draft at most once.
// After an error the page of the draft is shown again, with the files already sent.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.upload").forEach(function (form) {
    var bar = form.querySelector("progress.upload");
    var out = form.querySelector("output.upload");
    var button = form.querySelector("button[type=submit]");
    var sent = false;
    form.addEventListener("submit", function (ev) {
      if (sent) { ev.preventDefault(); return; }
      var limit = Number(form.dataset.limit || 0), total = 0;
      form.querySelectorAll("input[type=file]").forEach(function (input) {
        Array.prototype.forEach.call(input.files, function (f) { total += f.size; });
      });
      if (limit && total > limit) { ev.preventDefault(); out.textContent = form.dataset.tooBig; return; }
      sent = true;
      button.disabled = true;
      if (!window.XMLHttpRequest || !window.FormData) { return; }  // a plain post, still once
      ev.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) { return; }
        bar.hidden = false; bar.max = e.total; bar.value = e.loaded;
        out.textContent = form.dataset.progress + " " + Math.round(100 * e.loaded / e.total) + "%";
      });
      xhr.addEventListener("load", function () {
        // published: the resource page (the redirect was followed); refused: the draft's page
        location.assign(xhr.status < 300 && xhr.responseURL ? xhr.responseURL : form.action);
      });
      xhr.addEventListener("error", function () {
        out.textContent = form.dataset.failed; sent = false; button.disabled = false;
      });
      xhr.send(new FormData(form));
    });
  });
});

// Every other form that posts: its button is disabled once pressed (the server also answers a
// form sent twice with the first answer: the "once" field), and enabled again if the browser
// shows the page from its back/forward cache.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[method=post]:not(.upload):not(.fetch):not(.ai-task)").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        setTimeout(function () { b.disabled = true; }, 0);  // after the form data is taken
      });
    });
  });
});
window.addEventListener("pageshow", function (ev) {
  if (!ev.persisted) { return; }
  document.querySelectorAll("form[method=post] button[type=submit]").forEach(function (b) { b.disabled = false; });
});
// AI assistant: the answer streams in (server-sent events over a fetch POST).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.ai-task").forEach(function (form) {
    var out = document.querySelector("pre.ai-answer");
    var status = document.querySelector("output.ai-status");
    var draft = document.querySelector("p.ai-draft");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      out.textContent = ""; draft.hidden = true; status.textContent = form.dataset.streaming;
      var button = form.querySelector("button"); button.disabled = true;
      fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form)),
                          credentials: "same-origin"}).then(function (r) {
        if (!r.ok) {
          return r.text().then(function (html) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var e = doc.querySelector(".error");
            status.textContent = e ? e.textContent : String(r.status);
          });
        }
        var reader = r.body.getReader(), decoder = new TextDecoder(), buf = "";
        function handle(block) {
          var ev = "message", data = "";
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) { ev = line.slice(7); }
            else if (line.indexOf("data: ") === 0) { data += line.slice(6); }
          });
          if (!data) { return; }
          var v = JSON.parse(data);
          if (ev === "chunk") { out.textContent += v; }
          else if (ev === "done") { status.textContent = ""; draft.querySelector("a").href = v.draft; draft.hidden = false; }
          else if (ev === "error") { status.textContent = v.message; }
        }
        function pump() {
          return reader.read().then(function (res) {
            if (res.done) { return; }
            buf += decoder.decode(res.value, {stream: true});
            var i;
            while ((i = buf.indexOf("\n\n")) >= 0) { handle(buf.slice(0, i)); buf = buf.slice(i + 2); }
            return pump();
          });
        }
        return pump();
      }).catch(function (e) { status.textContent = String(e); })
        .then(function () { button.disabled = false; });
    });
  });
});
