//! The console's one page: the state so far rendered on the server (escaped with the report's
//! HTML escaping), then kept live by a small inline script listening to Server-Sent Events. No
//! external asset: inline CSS and JS, a viewport for phones, plain forms that also work without
//! the script (they post, and the server sends the page again).

use super::view::{Prompt, SinkView, View};
use crate::report::escape_html as esc;

/// The whole page for `view`, whose frames up to `frames` it already shows.
pub(super) fn page(view: &View, token: &str, frames: usize, server_ms: i64) -> String {
    let (run, scenario) =
        view.run.clone().unwrap_or_else(|| ("-".into(), "waiting for a run".into()));
    let mut timeline = String::new();
    for item in view.timeline.iter().rev() {
        timeline.push_str(&format!(
            "<li class=\"{}\"><time>{}</time> {}</li>",
            esc(&item.event),
            esc(&item.at),
            esc(&item.text)
        ));
    }
    let mut sinks = String::new();
    for (name, sink) in &view.sinks {
        sinks.push_str(&sink_html(name, sink));
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>firedrill gameday: {title}</title>
<style>{STYLE}</style>
</head>
<body data-token="{token}" data-frames="{frames}" data-server-ms="{server_ms}">
<header>
<h1>Gameday <span id="scenario">{title}</span></h1>
<p>run <span id="run">{run}</span> · <span id="live">connecting…</span></p>
<p id="status" role="status" aria-live="polite"></p>
</header>
<main>
<section id="prompts-section" aria-labelledby="prompts-title">
<h2 id="prompts-title">Open prompts</h2>
<div id="prompts">{prompts}</div>
</section>
<section id="sinks-section" aria-labelledby="sinks-title">
<h2 id="sinks-title">What the sinks received</h2>
<div id="sinks">{sinks}</div>
</section>
<section id="timeline-section" aria-labelledby="timeline-title">
<h2 id="timeline-title">Timeline</h2>
<ol id="timeline">{timeline}</ol>
</section>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        title = esc(&scenario),
        token = esc(token),
        run = esc(&run),
        prompts = prompts_html(&view.prompts, token),
    )
}

/// The open prompts as cards, each with its countdown and its answers (a form posting to
/// `/answer`): "Acknowledge" (or "Go on" where a decision is offered) and, where offered, "We
/// decided to roll back".
pub(super) fn prompts_html(prompts: &[Prompt], token: &str) -> String {
    if prompts.is_empty() {
        return "<p class=\"empty\">No prompt is open.</p>".to_owned();
    }
    let mut out = String::new();
    for prompt in prompts {
        let runbook = match &prompt.runbook {
            Some(link) if link.starts_with("https://") || link.starts_with("http://") => {
                format!("<p class=\"runbook\">Runbook: <a href=\"{0}\">{0}</a></p>", esc(link))
            }
            Some(text) => format!("<p class=\"runbook\">Runbook: {}</p>", esc(text)),
            None => String::new(),
        };
        let ack_label =
            if prompt.roll_back.is_some() { "Go on (acknowledge)" } else { "Acknowledge" };
        let ack = if prompt.acknowledged {
            "<span class=\"acked\">acknowledged</span>".to_owned()
        } else {
            format!(
                "<button class=\"ack\" name=\"answer\" value=\"acknowledge\">{ack_label}</button>"
            )
        };
        let roll_back = prompt
            .roll_back
            .as_ref()
            .map(|service| {
                format!(
                    "<button class=\"rollback\" name=\"answer\" value=\"roll-back\">We decided to roll back {}</button>",
                    esc(service)
                )
            })
            .unwrap_or_default();
        out.push_str(&format!(
            r#"<article class="prompt" data-step="{step}">
<h3><span class="role">{role}</span> <span class="countdown" data-deadline="{deadline}"></span></h3>
<p class="text">{text}</p>
{runbook}<p class="done">Done when: {done} · step <q>{step}</q></p>
<form method="post" action="/answer?token={token}">
<input type="hidden" name="step" value="{step}">
{ack} {roll_back}
</form>
</article>
"#,
            step = esc(&prompt.step),
            role = esc(&prompt.role),
            deadline = prompt.deadline_ms,
            text = esc(&prompt.prompt),
            done = esc(&prompt.done),
            token = esc(token),
        ));
    }
    out
}

fn sink_html(name: &str, sink: &SinkView) -> String {
    let mut items = String::new();
    for receipt in &sink.receipts {
        items.push_str(&format!(
            "<li><time>{}</time> <b>{}</b> to {}: {}</li>",
            esc(&receipt.at),
            esc(&receipt.channel),
            esc(&receipt.to),
            esc(&receipt.text)
        ));
    }
    format!(
        "<article class=\"sink\" data-sink=\"{name}\"><h3>{name} <small>{kind}</small> <span class=\"count\">{count}</span></h3><ol>{items}</ol></article>",
        name = esc(name),
        kind = esc(&sink.kind),
        count = sink.receipts.len(),
    )
}

const STYLE: &str = r#"
:root { color-scheme: light dark; --accent: #2563eb; --late: #c93c3c; --ok: #15803d; }
* { box-sizing: border-box; }
body { font: 16px/1.4 system-ui, sans-serif; margin: 0; padding: 0.75rem; max-width: 72rem; margin-inline: auto; }
h1 { font-size: 1.3rem; margin: 0.2rem 0; }
h2 { font-size: 1.1rem; margin: 1rem 0 0.5rem; }
h3 { font-size: 1rem; margin: 0 0 0.3rem; display: flex; gap: 0.5rem; flex-wrap: wrap; align-items: baseline; }
header p { margin: 0.2rem 0; color: GrayText; }
#status:not(:empty) { color: inherit; font-weight: 600; }
.prompt { border: 2px solid var(--accent); border-radius: 0.5rem; padding: 0.75rem; margin-bottom: 0.75rem; }
.prompt .text { font-size: 1.1rem; margin: 0.3rem 0; }
.role { background: var(--accent); color: white; border-radius: 1rem; padding: 0 0.6rem; }
.countdown { font-variant-numeric: tabular-nums; font-weight: 600; }
.countdown.late { color: var(--late); }
.done, .runbook { margin: 0.2rem 0; font-size: 0.9rem; }
form { display: flex; flex-wrap: wrap; gap: 0.5rem; margin-top: 0.5rem; }
button { font: inherit; padding: 0.6rem 1rem; border-radius: 0.4rem; border: 0; cursor: pointer; min-height: 2.75rem; }
button:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.ack { background: var(--ok); color: white; }
.rollback { background: var(--late); color: white; }
.acked { color: var(--ok); font-weight: 600; align-self: center; }
#sinks { display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: 0.5rem; }
.sink { border: 1px solid GrayText; border-radius: 0.4rem; padding: 0.5rem; }
.sink small { color: GrayText; font-weight: normal; }
.sink .count { margin-left: auto; }
.sink ol, #timeline { margin: 0; padding-left: 1.2rem; font-size: 0.9rem; }
#timeline { list-style: none; padding: 0; font-family: ui-monospace, monospace; font-size: 0.85rem; overflow-wrap: anywhere; }
#timeline li { padding: 0.1rem 0; border-bottom: 1px solid color-mix(in srgb, GrayText 25%, transparent); }
#timeline time, .sink time { color: GrayText; }
#timeline .human-prompted, #timeline .human-decided { font-weight: 700; }
.empty { color: GrayText; }
@media (min-width: 60rem) {
  main { display: grid; grid-template-columns: 1fr 1fr; gap: 0 1.5rem; }
  #prompts-section { grid-column: 1; }
  #sinks-section { grid-column: 2; grid-row: 1 / span 2; }
  #timeline-section { grid-column: 1; }
}
"#;

const SCRIPT: &str = r#"
(() => {
  const body = document.body;
  const token = body.dataset.token;
  // The server's clock against ours, taken when the server answered (between the request and
  // the first byte of the answer), not when this script runs (a busy browser runs it late).
  const nav = performance.getEntriesByType('navigation')[0];
  const answered = nav ? performance.timeOrigin + (nav.requestStart + nav.responseStart) / 2 : Date.now();
  const skew = Number(body.dataset.serverMs) - answered;
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  const status = (text) => { $('status').textContent = text; };
  function tick() {
    const now = Date.now() + skew;
    for (const c of document.querySelectorAll('.countdown')) {
      const left = Math.ceil((Number(c.dataset.deadline) - now) / 1000);
      c.textContent = left > 0 ? left + ' s left' : 'deadline passed';
      c.classList.toggle('late', left <= 5);
    }
  }
  setInterval(tick, 250); tick();
  document.addEventListener('submit', async (event) => {
    const form = event.target;
    const button = event.submitter;
    if (!button) return;
    event.preventDefault();
    const step = form.querySelector('input[name=step]').value;
    const params = new URLSearchParams({ step, answer: button.value });
    for (const b of form.querySelectorAll('button')) b.disabled = true;
    try {
      const answer = await fetch(form.action, { method: 'POST', headers: { accept: 'application/json' }, body: params });
      const json = await answer.json();
      status(answer.ok ? json.message : 'Not taken: ' + json.error);
    } catch (error) {
      status('Not sent: ' + error);
    }
  });
  function sink(data) {
    let card = document.querySelector('.sink[data-sink="' + CSS.escape(data.sink) + '"]');
    if (!card) {
      card = el('article', 'sink'); card.dataset.sink = data.sink;
      const h = el('h3', null, data.sink + ' ');
      h.append(el('small', null, data.kind || ''), ' ', el('span', 'count', '0'));
      card.append(h, el('ol'));
      $('sinks').append(card);
    }
    if (data.receipt) {
      const r = data.receipt;
      const li = el('li');
      li.append(el('time', null, r.at), ' ', el('b', null, r.channel), ' to ' + r.to + ': ' + r.text);
      card.querySelector('ol').append(li);
      card.querySelector('.count').textContent = card.querySelectorAll('li').length;
    }
  }
  const source = new EventSource('/events?token=' + encodeURIComponent(token) + '&after=' + body.dataset.frames);
  source.onopen = () => { $('live').textContent = 'live'; };
  source.onerror = () => { $('live').textContent = 'disconnected (the run may be over)'; };
  source.addEventListener('run', (e) => {
    const data = JSON.parse(e.data);
    $('scenario').textContent = data.scenario; $('run').textContent = data['run-id'];
    document.title = 'firedrill gameday: ' + data.scenario;
    $('timeline').replaceChildren(); $('sinks').replaceChildren();
    $('prompts').innerHTML = '<p class="empty">No prompt is open.</p>';
  });
  source.addEventListener('prompts', (e) => { $('prompts').innerHTML = JSON.parse(e.data).html; tick(); });
  source.addEventListener('sink', (e) => sink(JSON.parse(e.data)));
  source.addEventListener('timeline', (e) => {
    const item = JSON.parse(e.data);
    const li = el('li', item.event);
    li.append(el('time', null, item.at), ' ' + item.text);
    $('timeline').prepend(li);
  });
})();
"#;

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;

    use super::*;
    use crate::cli::console::view::{Item, Receipt};

    fn prompt(roll_back: Option<&str>) -> Prompt {
        Prompt {
            step: "ack \"it\" <now>".into(),
            role: "on-call".into(),
            prompt: "<script>alert(1)</script> & go".into(),
            runbook: Some("javascript:alert(1)".into()),
            done: "acknowledge".into(),
            deadline_ms: 1_800_000_020_000,
            acknowledged: false,
            roll_back: roll_back.map(str::to_owned),
        }
    }

    #[test]
    fn every_user_string_is_escaped_and_a_runbook_is_a_link_only_over_http() {
        let html = prompts_html(&[prompt(Some("billing"))], "t0k&n");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; go"), "{html}");
        assert!(html.contains("data-step=\"ack &quot;it&quot; &lt;now&gt;\""), "{html}");
        assert!(html.contains("value=\"ack &quot;it&quot; &lt;now&gt;\""), "{html}");
        assert!(!html.contains("href=\"javascript"), "not a link: {html}");
        assert!(html.contains("action=\"/answer?token=t0k&amp;n\""), "{html}");
        assert!(html.contains("data-deadline=\"1800000020000\""));
        assert!(html.contains("value=\"roll-back\">We decided to roll back billing</button>"));
        assert!(html.contains(">Go on (acknowledge)</button>"));
        let plain = prompts_html(&[prompt(None)], "t");
        assert!(!plain.contains("roll-back") && plain.contains(">Acknowledge</button>"));
        let mut linked = prompt(None);
        linked.runbook = Some("https://runbooks.example/a?b=1&c=2".into());
        let linked = prompts_html(&[linked], "t");
        assert!(linked.contains("<a href=\"https://runbooks.example/a?b=1&amp;c=2\">"), "{linked}");
    }

    #[test]
    fn the_page_is_self_contained_phone_sized_and_escapes_the_timeline_and_sinks() {
        let mut view = View::new(IndexMap::new());
        view.run = Some(("r1".into(), "<b>game</b>".into()));
        view.timeline.push(Item {
            at: "1.0s".into(),
            text: "a <i>b</i>".into(),
            event: "x".into(),
        });
        view.sinks.insert(
            "status".into(),
            SinkView {
                kind: "statuspage".into(),
                receipts: vec![Receipt {
                    at: "2.0s".into(),
                    channel: "status-page".into(),
                    to: "page1".into(),
                    text: "<img src=x>".into(),
                }],
            },
        );
        let html = page(&view, "tok", 5, 42);
        assert!(
            html.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            )
        );
        assert!(html.contains("data-token=\"tok\" data-frames=\"5\" data-server-ms=\"42\""));
        assert!(html.contains("&lt;b&gt;game&lt;/b&gt;") && !html.contains("<b>game"));
        assert!(html.contains("a &lt;i&gt;b&lt;/i&gt;"));
        assert!(html.contains("&lt;img src=x&gt;") && !html.contains("<img"));
        assert!(html.contains("No prompt is open."));
        // Nothing is loaded from elsewhere.
        for external in ["<link", " src=\"", "http://", "https://", "@import"] {
            assert!(!html.contains(external), "{external} in the page");
        }
    }
}
