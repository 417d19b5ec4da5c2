// The mobile page: topics, an answer with its articles, ask, my consultations, rating — all over /api/mp.
// Plain JavaScript (no build step, no CDN): it must load fast on a weak phone inside WeChat's browser.
"use strict";

const API = "/api/mp";
const TOKEN_KEY = "workerlaw.token";
const view = document.getElementById("view");
const titleEl = document.getElementById("title");
const backEl = document.getElementById("back");
const mineEl = document.getElementById("mine");
let topicNames = {};

// --- helpers -------------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else if (value !== false && value != null) el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function show(title, ...nodes) {
  titleEl.textContent = title;
  backEl.hidden = location.hash === "" || location.hash === "#/";
  mineEl.hidden = !token() || location.hash.startsWith("#/history");
  view.replaceChildren(...nodes.flat());
  window.scrollTo(0, 0);
}

function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 2500);
}

function token() { return localStorage.getItem(TOKEN_KEY); }

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (token()) headers.Authorization = `Bearer ${token()}`;
  let res;
  try {
    res = await fetch(API + path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch (err) {
    throw new ApiError(0, "network", "网络不太好，请稍后再试");
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    if (res.status === 401 && path !== "/login/code") localStorage.removeItem(TOKEN_KEY);
    throw new ApiError(res.status, data.error || "error", data.message || "出错了，请稍后再试");
  }
  return data;
}

function when(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function loadTopics() {
  if (Object.keys(topicNames).length) return;
  const data = await api("/topics");
  for (const t of data.topics) topicNames[t.key] = t;
}

const HOTLINES = h("p", { class: "muted hotline" },
  "急事请直接拨打：12348 公共法律服务热线，12333 人社服务热线。");

// --- sign-in -------------------------------------------------------------------------------------

async function signIn(message) {
  const methods = await api("/login/methods");
  const nodes = [h("div", { class: "card" },
    h("h2", {}, "登录后可以提问和查看律师答复"),
    h("p", { class: "muted" }, "浏览常见问题不用登录。"),
    message ? h("p", { class: "error" }, message) : null,
  )];
  if (methods.oauth_url) {
    if (/MicroMessenger/i.test(navigator.userAgent) && !message) {
      location.href = methods.oauth_url;
      return;
    }
    nodes[0].append(h("a", { class: "button", href: methods.oauth_url, id: "oauth" }, "微信登录"));
  }
  if (methods.code) {
    const input = h("input", { id: "code", inputmode: "text", autocomplete: "one-time-code", maxlength: "32",
      placeholder: "请输入工作人员给您的登录码" });
    const error = h("p", { class: "error", hidden: true });
    const submit = async () => {
      error.hidden = true;
      try {
        const data = await api("/login/code", { method: "POST", body: { code: input.value.trim() } });
        localStorage.setItem(TOKEN_KEY, data.token);
        toast("登录成功");
        route();
      } catch (err) {
        error.textContent = err.code === "invalid_code" ? "登录码不对、已过期或已用过，请向工作人员再要一个" : err.message;
        error.hidden = false;
      }
    };
    nodes[0].append(h("label", { for: "code" }, "登录码"), input,
      h("button", { id: "code-submit", onclick: submit }, "登录"), error);
  }
  show("登录", nodes, h("a", { class: "button secondary", href: "#/" }, "先看看常见问题"));
}

// --- pages ---------------------------------------------------------------------------------------

async function home() {
  await loadTopics();
  const q = h("input", { id: "q", type: "search", maxlength: "200", placeholder: "搜一搜：比如 拖欠工资、工伤认定" });
  const search = () => { if (q.value.trim()) location.hash = `#/search/${encodeURIComponent(q.value.trim())}`; };
  q.addEventListener("keydown", (e) => { if (e.key === "Enter") search(); });
  show("职工法律咨询",
    h("div", { class: "card" },
      h("h2", {}, "有劳动纠纷？先查一查，查不到就问律师"),
      h("div", { class: "row" }, q),
      h("button", { onclick: search, id: "search" }, "搜索"),
      h("a", { class: "button secondary", href: "#/ask", id: "ask-link" }, "我要提问"),
    ),
    h("div", { class: "topics" },
      Object.values(topicNames).map((t) => h("a", { class: "topic", href: `#/topic/${t.key}` },
        h("b", {}, t.name), h("span", {}, t.covers)))),
    HOTLINES.cloneNode(true),
  );
}

async function faqList(title, params) {
  const perPage = 20;
  let page = 1;
  const list = h("div", { class: "card list" });
  const more = h("button", { class: "secondary" }, "加载更多");
  const load = async () => {
    const data = await api(`/faq?${new URLSearchParams({ ...params, page, per_page: perPage })}`);
    for (const item of data.items) {
      list.append(h("a", { href: `#/faq/${item.id}` }, h("b", {}, item.title)));
    }
    if (!data.total) list.append(h("p", { class: "muted" }, "没有找到，您可以直接问律师。"));
    more.hidden = page * perPage >= data.total;
    page += 1;
  };
  more.addEventListener("click", load);
  await load();
  show(title, list, more, h("a", { class: "button secondary", href: "#/ask" }, "没找到？我要提问"));
}

async function faq(id) {
  const entry = await api(`/faq/${encodeURIComponent(id)}`);
  show(entry.title,
    h("div", { class: "card", id: "answer" },
      h("h2", {}, entry.title),
      h("p", {}, entry.answer),
      entry.detail ? [h("h3", {}, "详细说明"), h("p", {}, entry.detail)] : null,
      entry.regional ? h("p", { class: "note" }, "各地规定可能不同，具体以当地规定为准，可以问律师。") : null,
      h("h3", {}, "法律依据"),
      entry.citations.map((c) => h("div", { class: "article" },
        h("b", {}, `${c.title}${c.label}`), h("p", {}, c.text))),
    ),
    h("a", { class: "button", href: "#/ask" }, "还有疑问？我要提问"),
  );
}

async function privacyGate() {
  const notice = await api("/privacy");
  return new Promise((resolve) => {
    show("个人信息保护",
      h("div", { class: "card" },
        h("h2", {}, "提问前请阅读"),
        h("p", { class: "privacy", id: "privacy-text" }, notice.text),
        h("button", { id: "privacy-accept", onclick: async () => {
          await api("/privacy", { method: "POST", body: { version: notice.version } });
          resolve(true);
        } }, "同意并继续"),
        h("a", { class: "button secondary", href: "#/" }, "不同意"),
      ));
  });
}

function replyCard(data) {
  const card = h("div", { class: "card", id: "reply" }, h("div", { class: "bubbles" },
    h("div", { class: "bubble bot" }, h("small", {}, "助手"), data.reply || "已收到")));
  if (data.options && data.options.length) {
    card.append(h("div", { class: "options" }, data.options.map((o) =>
      h("button", { onclick: () => ask(String(o.number)) }, `${o.number}. ${o.title}`)),
    h("button", { onclick: () => ask("0") }, "0. 都不是，找律师")));
  }
  if (data.worker_type_choices && data.worker_type_choices.length) card.append(workerTypeChips(data.worker_type_choices));
  if (data.consultation_id) {
    card.append(h("a", { class: "button secondary", href: `#/c/${data.consultation_id}`, id: "open-consultation" },
      data.needs_lawyer ? "查看进度（律师答复会显示在这里）" : "查看这次咨询"));
  }
  return card;
}

// Asked once, after a first answer: one tap records the worker's kind of work for the union's counts.
function workerTypeChips(choices) {
  const box = h("div", { class: "worker-type", id: "worker-type" },
    h("p", { class: "muted" }, "顺便问一下，您做的是哪一行？点一下就行（不选也不影响咨询）"));
  const chips = h("div", { class: "options" }, choices.map((c) =>
    h("button", { class: "chip", "data-type": c.code, onclick: async () => {
      try {
        await api("/me/worker-type", { method: "PUT", body: { type: c.code } });
        box.replaceChildren(h("p", { class: "muted" }, `已记下（${c.label}），谢谢！`));
      } catch (err) {
        toast(err.message);
      }
    } }, c.label)));
  box.append(chips);
  return box;
}

async function ask(prefill) {
  if (!token()) return signIn();
  const text = h("textarea", { id: "question", maxlength: "500", placeholder: "说说您遇到的事：在哪干活、干了多久、遇到什么问题" });
  const send = h("button", { id: "send" }, "发送");
  const out = h("div", {});
  const submit = async (value) => {
    if (!value.trim()) { toast("请先写下您的问题"); return; }
    send.disabled = true;
    try {
      const data = await api("/ask", { method: "POST", body: { text: value } });
      out.replaceChildren(replyCard(data));
      text.value = "";
    } catch (err) {
      if (err.code === "privacy_not_accepted") {
        await privacyGate();
        return ask(value);
      }
      toast(err.message);
    } finally {
      send.disabled = false;
    }
  };
  send.addEventListener("click", () => submit(text.value));
  show("我要提问",
    h("div", { class: "card" }, h("label", { for: "question" }, "您的问题"), text, send,
      h("p", { class: "muted" }, "常见问题马上答复；其他问题转给值班律师，答复会出现在“我的咨询”里。")),
    out, HOTLINES.cloneNode(true));
  if (prefill) await submit(prefill);
}

async function myConsultations() {
  if (!token()) return signIn();
  await loadTopics();
  const data = await api("/consultations");
  const list = h("div", { class: "card list", id: "history" });
  for (const c of data.items) {
    const name = (topicNames[c.category] || {}).name || "法律咨询";
    list.append(h("a", { href: `#/c/${c.id}` },
      h("b", {}, name), " ",
      h("span", { class: c.closed_at ? "tag" : "tag open" }, c.closed_at ? "已结束" : "进行中"), " ",
      c.rating ? h("span", { class: "tag" }, `${"★".repeat(c.rating)}`) : null,
      h("div", { class: "muted" }, when(c.opened_at))));
  }
  if (!data.items.length) list.append(h("p", { class: "muted" }, "还没有咨询记录。"));
  const erase = h("button", { class: "link", id: "erase", onclick: async () => {
    if (!confirm("删除后，您的提问和答复内容将被清除，无法恢复。确定删除吗？")) return;
    await api("/me", { method: "DELETE" });
    localStorage.removeItem(TOKEN_KEY);
    toast("已删除您的个人信息");
    location.hash = "#/";
  } }, "删除我的个人信息");
  show("我的咨询", list, h("a", { class: "button", href: "#/ask" }, "新的提问"), erase);
}

function stars(consultation) {
  const box = h("div", { class: "stars", id: "stars" });
  const paint = (n) => box.querySelectorAll("button").forEach((b, i) => b.classList.toggle("on", i < n));
  for (let n = 1; n <= 5; n++) {
    box.append(h("button", { "aria-label": `${n}星`, "data-stars": n, onclick: async () => {
      await api(`/consultations/${consultation.id}/rating`, { method: "POST", body: { stars: n } });
      paint(n);
      toast("谢谢您的评价");
    } }, "★"));
  }
  paint(consultation.rating || 0);
  return box;
}

async function consultation(id) {
  if (!token()) return signIn();
  const c = await api(`/consultations/${id}`);
  const who = { worker: "我", bot: "助手", lawyer: "律师" };
  const bubbles = h("div", { class: "bubbles", id: "transcript" },
    c.messages.filter((m) => m.text).map((m) => h("div", { class: `bubble ${m.from}` },
      h("small", {}, `${who[m.from] || "服务"} · ${when(m.at)}`), m.text)));
  const nodes = [h("div", { class: "card" }, bubbles)];
  if (!c.closed_at) {
    const text = h("textarea", { id: "follow-up", maxlength: "500", placeholder: "补充说明或继续提问" });
    nodes.push(h("div", { class: "card" }, text, h("button", { id: "follow-up-send", onclick: async () => {
      if (!text.value.trim()) return;
      try {
        await api(`/consultations/${id}/messages`, { method: "POST", body: { text: text.value } });
        consultation(id);
      } catch (err) { toast(err.message); }
    } }, "发送")));
  }
  nodes.push(h("div", { class: "card" }, h("h3", {}, "这次帮助对您有用吗？"), stars(c)));
  show(c.closed_at ? "咨询记录（已结束）" : "咨询记录", nodes);
}

// --- routing -------------------------------------------------------------------------------------

function takeFragment() {
  // Back from WeChat's OAuth: #token=...&expires_in=... or #login_error=...
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("token")) {
    localStorage.setItem(TOKEN_KEY, params.get("token"));
    replaceHash("#/history");
    return null;
  }
  if (params.has("login_error")) {
    replaceHash("#/login");
    return params.get("login_error");
  }
  return null;
}

function replaceHash(hash) { window.history.replaceState(null, "", location.pathname + hash); }

async function route() {
  const loginError = takeFragment();
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const page = parts[0] || "";
  const arg = parts[1] || "";
  try {
    if (page === "login") return await signIn(loginError);
    if (page === "topic") {
      await loadTopics();
      return await faqList((topicNames[arg] || {}).name || "常见问题", { category: arg });
    }
    if (page === "search") return await faqList("搜索结果", { q: decodeURIComponent(arg || "") });
    if (page === "faq") return await faq(decodeURIComponent(arg));
    if (page === "ask") return await ask();
    if (page === "history") return await myConsultations();
    if (page === "c") return await consultation(Number(arg));
    return await home();
  } catch (err) {
    if (err.status === 401) return signIn("登录已过期，请重新登录");
    show("出错了", h("div", { class: "card" }, h("p", {}, err.message || "出错了，请稍后再试")),
      h("a", { class: "button", href: "#/" }, "回到首页"));
  }
}

window.addEventListener("hashchange", route);
route();
