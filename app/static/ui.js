// sciserve's trace pages (routers/ui.py): /ui/jobs, the caller's recent jobs, and
// /ui/jobs/{id}, one solve: its stages on a timeline, each engine call's samples and
// answers, the vote, tool calls, SCoRe and ART decisions, tokens and times, followed
// live over GET /jobs/{id}/events while it runs.
//
// Every text that comes from a job (the problem, model outputs, tool arguments and
// results, error messages) is untrusted: it enters the page only as text nodes, never
// as markup, and no link is built from it (only from job ids, URI-encoded). The server's
// Content-Security-Policy allows this file and the stylesheet, and no inline script.
"use strict";

(function () {
  const FINAL = new Set(["succeeded", "failed"]);
  const main = document.getElementById("main");
  const statusLine = document.getElementById("status");
  const signOut = document.getElementById("sign-out");
  let view = null; // the job page's live parts

  // --- the page's only ways of making DOM: elements with fixed attributes, and text ---

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "data") {
        for (const [key, item] of Object.entries(value)) node.dataset[key] = String(item);
      } else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "string") return value;
    return JSON.stringify(value, null, 2);
  }

  const pre = (value) => h("pre", {}, show(value));
  const seconds = (value) => (typeof value === "number" ? value.toFixed(2) + " s" : "—");
  const when = (unix) => new Date(unix * 1000).toLocaleString();
  const say = (message) => { statusLine.textContent = message; };

  function clear() {
    for (const node of [...main.children]) if (node !== statusLine) node.remove();
  }

  function pairs(entries) {
    const list = h("dl", {});
    for (const [term, value] of entries) {
      if (value === undefined) continue;
      list.append(h("dt", {}, term), h("dd", {}, value instanceof Node ? value : show(value)));
    }
    return list;
  }

  function table(caption, headings, rows, className) {
    return h("table", { class: className },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows));
  }

  function section(title, id, ...children) {
    return h("section", { "aria-labelledby": id }, h("h2", { id }, title), children);
  }

  // --- the API: JSON, the session cookie the browser holds ---

  async function getJson(path) {
    const response = await fetch(path, {
      headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
    });
    let body = null;
    try { body = await response.json(); } catch (error) { body = null; }
    return { status: response.status, body };
  }

  function failed(status, body) {
    if (status === 200) return false;
    if (status === 401) {
      signIn(body && body.detail);
      return true;
    }
    clear();
    const detail = (body && body.detail) || "The server answered " + status + ".";
    main.append(h("h1", {}, status === 404 ? "Not found" : "Error"), h("p", { class: "error" }, detail));
    say(detail);
    document.body.dataset.state = "error";
    return true;
  }

  function signedIn(name) {
    signOut.hidden = !name || name === "anonymous";
  }

  signOut.addEventListener("click", async () => {
    await fetch("/ui/session", { method: "DELETE", credentials: "same-origin" });
    location.reload();
  });

  function signIn(reason) {
    clear();
    document.title = "Sign in · sciserve";
    say(reason || "Sign in with an API key.");
    const input = h("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true });
    const problem = h("p", { class: "error", role: "alert" });
    const form = h("form", { class: "sign-in", "aria-labelledby": "sign-in-title" },
      h("h1", { id: "sign-in-title" }, "Sign in"),
      h("p", {}, "Your API key is sent once; the server answers with a session cookie for these " +
        "pages that scripts cannot read and other sites cannot send. It lasts 8 hours."),
      h("label", { for: "api-key" }, "API key"), input,
      h("button", { type: "submit" }, "Sign in"), problem);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.textContent = "";
      const response = await fetch("/ui/session", {
        method: "POST", credentials: "same-origin", body: "{}",
        headers: { Authorization: "Bearer " + input.value.trim(), "Content-Type": "application/json" },
      });
      if (response.ok) {
        location.reload();
        return;
      }
      let detail = "Sign-in failed (" + response.status + ").";
      try { detail = (await response.json()).detail || detail; } catch (error) { /* keep it */ }
      problem.textContent = detail;
    });
    main.append(form);
    document.body.dataset.state = "sign-in";
    input.focus();
  }

  // --- /ui/jobs ---

  async function listPage() {
    const { status, body } = await getJson("/ui/api/jobs");
    if (failed(status, body)) return;
    clear();
    document.title = "Recent jobs · sciserve";
    signedIn(body.viewer);
    const rows = body.jobs.map((job) => h("tr", { data: { job: job.id } },
      h("th", { scope: "row" }, h("a", { href: "/ui/jobs/" + encodeURIComponent(job.id) }, job.id.slice(0, 12))),
      h("td", {}, h("span", { class: "badge " + job.status }, job.status)),
      h("td", {}, job.strategy),
      h("td", { class: "num" }, job.total_tokens ?? "—"),
      h("td", { class: "num" }, seconds(job.duration_s)),
      h("td", {}, when(job.submitted_at)),
      h("td", { class: "text" }, job.problem)));
    main.append(h("h1", {}, "Recent jobs"), rows.length
      ? table("Your jobs still kept, newest first", ["Job", "Status", "Strategy", "Tokens", "Duration", "Submitted", "Problem"], rows, "jobs")
      : h("p", {}, "No jobs yet: jobs this key sends (POST /jobs, /solve or /v1) appear here."));
    say(rows.length === 1 ? "1 job." : rows.length + " jobs.");
    document.body.dataset.state = "ready";
  }

  // --- /ui/jobs/{id} ---

  async function jobPage(jobId) {
    const { status, body } = await getJson("/ui/api/jobs/" + encodeURIComponent(jobId));
    if (failed(status, body)) return;
    if (!document.body.dataset.firstStatus) document.body.dataset.firstStatus = body.status;
    render(body);
    if (!FINAL.has(body.status)) follow(body);
  }

  function render(job) {
    clear();
    document.title = "Job " + job.id.slice(0, 12) + " · sciserve";
    signedIn(job.key_name);
    const request = job.request;
    const badge = h("span", { class: "badge " + job.status, id: "job-status" }, job.status);
    view = {
      job, badge, stages: [],
      timeline: h("ol", { class: "timeline" }),
      list: h("div", { class: "stages" }),
      live: h("pre", { class: "live", id: "live-answer" }),
    };
    main.append(
      h("h1", {}, "Job ", h("code", {}, job.id), " ", badge),
      section("Problem", "problem-title",
        h("pre", { class: "problem", id: "problem" }, request.problem),
        request.options ? h("ol", { class: "options", type: "A" }, request.options.map((o) => h("li", {}, o))) : null,
        pairs([
          ["Strategy", job.strategy],
          ["Strategy settings", h("details", {}, h("summary", {}, "as sent"), pre(request.strategy))],
          ["Key", job.key_name],
          ["Submitted", when(job.submitted_at)],
          ["Tool servers", request.tools ? request.tools.join(", ") : "all"],
          ["Thoughts", job.thoughts_visible ? "revealed" : "hidden"],
        ])),
      outcome(job),
      section("Timeline", "timeline-title",
        h("p", { class: "note" }, "Stages in the order they ran; each bar is the stage's share of the run."),
        view.timeline),
      section("Stages", "stages-title", view.list));
    for (const event of job.events) if (event.type === "stage") addStage(event);
    say(FINAL.has(job.status) ? "Job " + job.status + "." : "Job " + job.status + "; following it live.");
    document.body.dataset.state = "ready";
  }

  function outcome(job) {
    const result = job.result;
    if (job.status === "failed") {
      return section("Outcome", "outcome-title",
        pairs([["Error code", job.error_code], ["Error", h("pre", { class: "error" }, job.error || "—")]]));
    }
    if (!result) {
      return section("Answer", "outcome-title",
        h("p", {}, "Not finished yet. The answer appears here as it is written, when the strategy streams it:"),
        view.live);
    }
    const usage = result.usage;
    const timings = result.timings;
    return section("Answer", "outcome-title",
      pairs([
        ["Answer", h("strong", { id: "answer" }, show(result.answer))],
        ["Answer text", pre(result.answer_text)],
        ["Correct", result.correct === null ? "no reference given" : result.correct ? "yes" : "no"],
        ["Initial answer", result.initial_answer],
        ["Tools used", result.used_tools.length ? result.used_tools.join(", ") : "none"],
        ["Thoughts", result.thoughts ? h("details", {}, h("summary", {}, "Revealed thoughts"), pre(result.thoughts)) : undefined],
      ]),
      table("Tokens", ["Prompt", "Completion", "Thought", "Tool", "Engine calls"], [h("tr", {},
        [usage.prompt_tokens, usage.completion_tokens, usage.thought_tokens, usage.tool_tokens, usage.engine_calls]
          .map((n) => h("td", { class: "num" }, n)))], "usage"),
      pairs([["Queued", seconds(timings.queue_s)], ["Ran", seconds(timings.run_s)], ["Total", seconds(timings.total_s)]]));
  }

  function addStage(event) {
    if (event.index === undefined) event.index = view.stages.length;
    view.stages.push(event);
    drawTimeline();
    view.list.append(stageArticle(event));
  }

  function drawTimeline() {
    const total = view.stages.reduce((sum, e) => sum + (e.duration_s || 0), 0) || 1;
    let offset = 0;
    view.timeline.replaceChildren(...view.stages.map((event) => {
      const bar = h("span", { class: "bar " + barClass(event.stage), "aria-hidden": "true" });
      bar.style.marginLeft = (100 * offset / total).toFixed(2) + "%";
      bar.style.width = Math.max(0.5, 100 * (event.duration_s || 0) / total).toFixed(2) + "%";
      offset += event.duration_s || 0;
      const tokens = event.completion_tokens + event.thought_tokens;
      return h("li", { data: { stage: event.stage } },
        h("a", { class: "label", href: "#stage-" + event.index },
          event.stage + (event.role ? " · " + event.role : "") + " · " + seconds(event.duration_s) +
          " · " + tokens + " tokens"),
        h("span", { class: "track" }, bar));
    }));
  }

  function barClass(stage) {
    if (stage.startsWith("art_")) return "art";
    return ["generate", "selfcorrect", "select", "plan", "plan_step", "plan_answer", "few_shot"].includes(stage) ? stage : "other";
  }

  function stageArticle(event) {
    const detail = event.detail || {};
    const used = new Set();
    const article = h("article", { class: "stage", id: "stage-" + event.index, tabindex: "-1", data: { stage: event.stage, index: event.index } },
      h("h3", {}, (event.index + 1) + ". " + event.stage + (event.role ? " (" + event.role + ")" : "")),
      h("p", { class: "meta" },
        seconds(event.duration_s) + " · " + event.prompt_tokens + " prompt, " + event.completion_tokens +
        " completion, " + event.thought_tokens + " thought, " + event.tool_tokens + " tool tokens · " +
        event.engine_calls + " engine calls"));
    if (event.truncated) {
      article.append(h("p", { class: "note" }, "This stage's detail is left out: the job's trace reached its size limit."));
    }
    const parts = [
      samples(detail, used), toolCalls(detail.tool_calls, used), vote(detail, used),
      selfCorrection(event.stage, detail, used), thoughts(detail.thoughts, used),
      engineCalls(event.calls || [], event.calls_not_listed), rest(event.stage, detail, used)];
    article.append(...parts.filter((part) => part !== null));
    return article;
  }

  function samples(detail, used) {
    if (!Array.isArray(detail.answers)) return null;
    used.add("answers").add("decisions");
    const decisions = Array.isArray(detail.decisions) ? detail.decisions : [];
    const calls = Array.isArray(detail.tool_calls) ? detail.tool_calls : [];
    const rows = detail.answers.map((answer, i) => h("tr", { class: "sample" },
      h("th", { scope: "row" }, String(i)),
      h("td", {}, show(decisions[i] ?? "—")),
      h("td", { class: "text" }, show(answer)),
      h("td", { class: "num" }, Array.isArray(calls[i]) ? calls[i].length : 0)));
    return table("Samples and their answers", ["Sample", "Decision", "Answer", "Tool calls"], rows, "samples");
  }

  function toolCalls(perSample, used) {
    if (!Array.isArray(perSample)) return null;
    used.add("tool_calls");
    const blocks = [];
    perSample.forEach((calls, sample) => {
      if (!Array.isArray(calls) || !calls.length) return;
      blocks.push(h("h4", {}, "Sample " + sample + ": tool calls"), h("ol", { class: "tool-calls" },
        calls.map((call) => toolCall(call))));
    });
    return blocks.length ? h("div", { class: "tools" }, blocks) : null;
  }

  function toolCall(call) {
    if (!call || typeof call !== "object") return h("li", { class: "tool-call" }, pre(call));
    const result = call.result;
    const printed = result && typeof result === "object" && typeof result.stdout === "string";
    return h("li", { class: "tool-call" },
      h("p", {}, h("strong", {}, show(call.tool)), " on ", show(call.server),
        " · HTTP " + show(call.status_code) + " · " + show(call.elapsed_ms) + " ms"),
      pairs([
        ["Arguments", pre(call.arguments)],
        ["Output", printed ? pre(result.stdout) : undefined],
        ["Errors", printed && result.stderr ? pre(result.stderr) : undefined],
        ["Result", printed ? undefined : pre(result)],
        ["Error", call.error ? h("pre", { class: "error" }, call.error) : undefined],
      ]));
  }

  function vote(detail, used) {
    if (!detail.votes || typeof detail.votes !== "object") return null;
    for (const key of ["votes", "method", "tied", "greedy_answer", "answer", "stop", "truster"]) used.add(key);
    const rows = Object.entries(detail.votes).map(([answer, count]) =>
      h("tr", { class: answer === detail.answer ? "winner vote" : "vote" },
        h("th", { scope: "row", class: "text" }, answer), h("td", { class: "num" }, count),
        h("td", {}, answer === detail.answer ? "chosen" : "")));
    const stop = detail.stop || null;
    const auto = stop && stop.auto;
    return h("div", { class: "vote-block" },
      table("The vote", ["Answer", "Votes", ""], rows, "votes"),
      pairs([
        ["Chosen by", detail.method],
        ["Answer", detail.answer],
        ["Greedy sample's answer", detail.greedy_answer],
        ["Tied", detail.tied && detail.tied.length ? detail.tied.join(", ") : "no"],
        ["Truster", detail.truster ? pre(detail.truster) : undefined],
        ["Stop rule", stop ? show(stop.rule) : undefined],
        ["Samples used", stop ? stop.used + " of " + stop.samples + " (window " + stop.window + ")" : undefined],
        ["Stopped early", stop ? (stop.stopped_early ? "yes" : "no") : undefined],
        ["Stopped while running", stop && stop.aborted && stop.aborted.length ? stop.aborted.join(", ") : undefined],
        ["Never started", stop && stop.not_started && stop.not_started.length ? stop.not_started.join(", ") : undefined],
        ["Tokens saved (estimate)", stop ? stop.tokens_saved_estimate : undefined],
        ["auto", auto ? (auto.escalated ? "escalated to the vote" : "kept the greedy answer") +
          " (" + auto.measure + " confidence " + show(auto.confidence) + ", threshold " + show(auto.threshold) + ")" : undefined],
      ]));
  }

  function selfCorrection(stage, detail, used) {
    if (stage !== "selfcorrect" || !Array.isArray(detail.answers_after)) return null;
    for (const key of ["round", "answers_before", "answers_after", "flips"]) used.add(key);
    const before = detail.answers_before || [];
    const rows = detail.answers_after.map((after, i) => h("tr", {},
      h("th", { scope: "row" }, String(i)), h("td", { class: "text" }, show(before[i])),
      h("td", { class: "text" }, show(after)), h("td", {}, before[i] === after ? "kept" : "changed")));
    return h("div", { class: "score" },
      table("SCoRe round " + show(detail.round) + ": answers before and after", ["Sample", "Before", "After", ""], rows, "score"),
      detail.flips ? pairs([["Flips", pre(detail.flips)]]) : null);
  }

  function thoughts(list, used) {
    if (!Array.isArray(list)) return null;
    used.add("thoughts");
    return h("details", { class: "thoughts" }, h("summary", {}, "Revealed thoughts"),
      h("ol", {}, list.map((thought) => h("li", {}, pre(thought)))));
  }

  function engineCalls(calls, notListed) {
    if (!calls.length) return null;
    const rows = calls.map((call, i) => h("tr", { class: "engine-call" },
      h("th", { scope: "row" }, String(i + 1)), h("td", {}, show(call.role)), h("td", { class: "num" }, call.n),
      h("td", { class: "num" }, call.temperature), h("td", { class: "num" }, call.max_tokens),
      h("td", { class: "num" }, call.prompt_tokens), h("td", { class: "num" }, call.completion_tokens),
      h("td", {}, (call.finish_reasons || []).map(show).join(", "))));
    const outputs = calls.map((call, i) => h("details", { class: "outputs" },
      h("summary", {}, "Call " + (i + 1) + ": " + (call.outputs || []).length + " output(s)"),
      h("ol", {}, (call.outputs || []).map((text) => h("li", {}, pre(text))))));
    return h("div", { class: "calls" },
      table("Engine calls", ["Call", "Role", "n", "Temperature", "Max tokens", "Prompt tokens", "Completion tokens", "Finish"], rows, "engine-calls"),
      outputs, notListed ? h("p", { class: "note" }, notListed + " more engine calls are not listed.") : null);
  }

  function rest(stage, detail, used) {
    const left = Object.entries(detail).filter(([key]) => !used.has(key));
    if (!left.length) return null;
    const art = stage.startsWith("art_");
    return h("details", { class: art ? "art" : "more", open: art },
      h("summary", {}, art ? "ART decisions" : "More detail"), pairs(left.map(([key, value]) => [key, pre(value)])));
  }

  function setStatus(status) {
    if (!view) return;
    view.badge.textContent = status;
    view.badge.className = "badge " + status;
  }

  function follow(job) {
    const source = new EventSource("/jobs/" + encodeURIComponent(job.id) + "/events");
    document.body.dataset.live = "open";
    document.body.dataset.followed = "true";
    const read = (message) => JSON.parse(message.data);
    source.addEventListener("status", (message) => setStatus(read(message).status));
    source.addEventListener("stage", (message) => {
      const event = read(message);
      if ((event.index ?? view.stages.length) >= view.stages.length) {
        addStage(event);
        say("Stage " + event.stage + " finished.");
      }
    });
    source.addEventListener("delta", (message) => view.live.append(read(message).text));
    source.addEventListener("done", (message) => {
      source.close();
      document.body.dataset.live = "closed";
      setStatus(read(message).status);
      jobPage(job.id); // the finished job: its answer, tokens and times
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        document.body.dataset.live = "closed";
        say("The live stream ended; reload to see the job as it stands.");
      }
    };
  }

  const match = location.pathname.match(/^\/ui\/jobs\/([^/]+)\/?$/);
  if (match) jobPage(decodeURIComponent(match[1]));
  else listPage();
})();
