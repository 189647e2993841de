// The counter console: one page over civicpay's public API with the officer's own tokens.
// The password is sent once, to log in, and never kept; the tokens live in this tab's
// sessionStorage (gone when the tab closes), the access token refreshed when it expires.
"use strict";

const $ = (id) => document.getElementById(id);
const dong = (n) => new Intl.NumberFormat("vi-VN").format(n) + " đ";
const when = (t) => (t ? new Date(t).toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" }) : "—");

// ---- Session -----------------------------------------------------------------------------

const session = {
  get tokens() {
    const saved = sessionStorage.getItem("civicpay.tokens");
    return saved ? JSON.parse(saved) : null;
  },
  set tokens(pair) {
    if (pair) sessionStorage.setItem("civicpay.tokens", JSON.stringify(pair));
    else sessionStorage.removeItem("civicpay.tokens");
  },
};

class Problem extends Error {
  constructor(problem) {
    super(problem.title || "Lỗi");
    this.problem = problem;
  }
}

const EXPIRED = {
  title: "Phiên đăng nhập đã hết hạn",
  detail: "Hãy đăng nhập lại để tiếp tục.",
  code: "unauthenticated",
};

async function send(method, path, body, extraHeaders) {
  const headers = { "accept-language": "vi", ...extraHeaders };
  const tokens = session.tokens;
  if (tokens) headers.authorization = "Bearer " + tokens.access_token;
  if (body !== undefined) headers["content-type"] = "application/json";
  return fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function refreshTokens() {
  const tokens = session.tokens;
  if (!tokens) return false;
  const response = await fetch("/v1/auth/refresh", {
    method: "POST",
    headers: { "content-type": "application/json", "accept-language": "vi" },
    body: JSON.stringify({ refresh_token: tokens.refresh_token }),
  });
  if (!response.ok) return false;
  session.tokens = await response.json();
  return true;
}

// A call of the API: the answer's JSON, or a Problem with its Vietnamese title and detail. An
// expired access token is refreshed once and the call repeated; a refused refresh ends the
// session.
async function api(method, path, body, extraHeaders) {
  let response = await send(method, path, body, extraHeaders);
  if (response.status === 401 && (await refreshTokens())) {
    response = await send(method, path, body, extraHeaders);
  }
  if (response.status === 401 && path !== "/v1/auth/login") {
    session.tokens = null;
    showLogin();
    throw new Problem(EXPIRED);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = null;
  }
  if (!response.ok) {
    throw new Problem(json && json.title ? json : { title: "Lỗi " + response.status, detail: text.slice(0, 200) });
  }
  return json;
}

function idempotencyKey() {
  return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
}

// ---- Messages ----------------------------------------------------------------------------

function showProblem(error) {
  const problem = error instanceof Problem ? error.problem : { title: "Lỗi", detail: String(error.message || error) };
  $("problem-title").textContent = problem.title;
  $("problem-detail").textContent = problem.detail || "";
  $("problem").dataset.code = problem.code || "";
  $("problem").hidden = false;
}

function clearProblem() {
  $("problem").hidden = true;
}

// Runs a step of the officer's; any refusal is shown, never swallowed.
function guarded(step) {
  return async (event) => {
    if (event) event.preventDefault();
    clearProblem();
    try {
      await step(event);
    } catch (error) {
      showProblem(error);
    }
  };
}

// ---- Amounts in Vietnamese words ---------------------------------------------------------

const DIGITS = ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"];

// Words of 0–999, `full` when a higher group precedes (so "không trăm", "linh" are said).
function threeDigits(n, full) {
  const hundreds = Math.floor(n / 100);
  const tens = Math.floor((n % 100) / 10);
  const units = n % 10;
  const words = [];
  if (hundreds > 0 || full) words.push(DIGITS[hundreds], "trăm");
  if (tens === 0) {
    if (units > 0 && (hundreds > 0 || full)) words.push("linh");
  } else if (tens === 1) {
    words.push("mười");
  } else {
    words.push(DIGITS[tens], "mươi");
  }
  if (units > 0) {
    if (units === 1 && tens > 1) words.push("mốt");
    else if (units === 5 && tens > 0) words.push("lăm");
    else if (units === 4 && tens > 1) words.push("tư");
    else words.push(DIGITS[units]);
  }
  return words.join(" ");
}

// "Hai trăm nghìn đồng" for 200000 (amounts go up to ten billion đồng).
function amountInWords(amount) {
  if (amount === 0) return "Không đồng";
  const scales = ["", "nghìn", "triệu", "tỷ", "nghìn tỷ", "triệu tỷ"];
  const groups = [];
  for (let rest = amount; rest > 0; rest = Math.floor(rest / 1000)) groups.push(rest % 1000);
  const words = [];
  for (let i = groups.length - 1; i >= 0; i--) {
    if (groups[i] === 0) continue;
    words.push(threeDigits(groups[i], i < groups.length - 1), scales[i]);
  }
  const text = words.filter(Boolean).join(" ") + " đồng";
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---- Views -------------------------------------------------------------------------------

function showLogin() {
  $("login-view").hidden = false;
  $("who").hidden = true;
  $("shift-view").hidden = true;
  $("desk").hidden = true;
  $("login-phone").focus();
}

async function showDesk() {
  const me = await api("GET", "/v1/me");
  $("who-name").textContent = me.full_name;
  $("who-unit").textContent = "Đơn vị " + (me.unit_code || "");
  $("who").hidden = false;
  $("login-view").hidden = true;
  $("shift-view").hidden = false;
  await loadShift();
  await loadWorklist();
}

let shift = null;

async function loadShift() {
  try {
    shift = await api("GET", "/v1/counter/shifts/current");
  } catch (error) {
    if (!(error instanceof Problem) || error.problem.code !== "not_found") throw error;
    shift = null;
  }
  $("no-shift").hidden = Boolean(shift);
  $("open-shift").hidden = !shift;
  $("desk").hidden = false;
  if (shift) {
    $("shift-opened").textContent = when(shift.opened_at);
    $("shift-float").textContent = dong(shift.opening_float);
    $("lookup-code").focus();
  } else {
    $("open-float").focus();
  }
}

function parseAmount(text) {
  const digits = String(text).replace(/[^0-9]/g, "");
  return digits === "" ? NaN : Number(digits);
}

let bill = null;
let collection = null;

function showBill(found) {
  bill = found;
  $("bill").hidden = false;
  $("qr-view").hidden = true;
  $("receipt-view").hidden = true;
  $("bill-code").textContent = found.code;
  $("bill-biller").textContent = found.biller.name;
  $("bill-payer").textContent = found.payer_name;
  $("bill-dossier").textContent = found.dossier_code || "—";
  const items = $("bill-items");
  items.replaceChildren(
    ...found.items.map((item) => {
      const li = document.createElement("li");
      li.textContent = item.name + ": " + dong(item.amount);
      return li;
    }),
  );
  $("bill-amount").textContent = dong(found.amount);
  const statuses = { unpaid: "Chưa thanh toán", paid: "Đã thanh toán", cancelled: "Đã hủy" };
  $("bill-status").textContent = statuses[found.status] || found.status;
  $("bill-actions").hidden = found.status !== "unpaid";
  $("cash-given").value = "";
  $("cash-change").textContent = "—";
  $("cash-given").focus();
}

function updateChange() {
  const given = parseAmount($("cash-given").value);
  if (!bill || Number.isNaN(given)) {
    $("cash-change").textContent = "—";
  } else if (given < bill.amount) {
    $("cash-change").textContent = "Khách đưa thiếu " + dong(bill.amount - given);
  } else {
    $("cash-change").textContent = dong(given - bill.amount);
  }
}

async function collect(method) {
  collection = await api(
    "POST",
    "/v1/counter/collections",
    { bill_code: bill.code, method },
    { "idempotency-key": idempotencyKey() },
  );
  if (method === "cash") {
    await showReceipt(collection.receipt_id);
  } else {
    await awaitQrPayment();
  }
}

// Shows the QR code and waits for the citizen's payment, a long poll at a time, without a reload.
async function awaitQrPayment() {
  $("bill").hidden = true;
  $("qr-view").hidden = false;
  $("qr-image").src = "/counter/qr.svg?data=" + encodeURIComponent(collection.qr_payload);
  $("qr-status").textContent = "Đang chờ thanh toán…";
  $("qr-status").className = "waiting";
  while (collection.status === "pending") {
    collection = await api("GET", "/v1/counter/collections/" + collection.id + "?wait=20");
  }
  if (collection.status === "completed") {
    $("qr-status").textContent = "Đã thanh toán";
    $("qr-status").className = "paid";
    await showReceipt(collection.receipt_id);
  } else {
    $("qr-status").textContent = "Mã QR không còn hiệu lực";
    $("qr-status").className = "";
  }
}

// The receipt, once numbered (within a second of the payment).
async function showReceipt(receiptId) {
  let receipt = await api("GET", "/v1/receipts/" + receiptId);
  for (let tries = 0; receipt.status === "numbering" && tries < 40; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    receipt = await api("GET", "/v1/receipts/" + receiptId);
  }
  $("receipt-form").textContent = receipt.form;
  $("receipt-series").textContent = receipt.series;
  $("receipt-number").textContent = receipt.number === null ? "(đang cấp số)" : String(receipt.number).padStart(7, "0");
  $("receipt-biller").textContent = receipt.biller.name;
  $("receipt-payer").textContent = receipt.payer_name;
  $("receipt-bill").textContent = receipt.bill_code;
  $("receipt-items").replaceChildren(
    ...receipt.items.map((item) => {
      const row = document.createElement("tr");
      const name = document.createElement("td");
      const amount = document.createElement("td");
      name.textContent = item.name;
      amount.textContent = dong(item.amount);
      row.append(name, amount);
      return row;
    }),
  );
  $("receipt-amount").textContent = dong(receipt.amount);
  $("receipt-words").textContent = amountInWords(receipt.amount);
  const methods = { cash: "Tiền mặt", counter_qr: "Quét mã QR tại quầy", wallet: "Ví điện tử", provider: "Ngân hàng" };
  $("receipt-method").textContent = methods[receipt.method] || receipt.method;
  $("receipt-paid").textContent = when(receipt.paid_at);
  $("receipt-qr").hidden = !receipt.compact;
  if (receipt.compact) $("receipt-qr").src = "/counter/qr.svg?data=" + encodeURIComponent(receipt.compact);
  $("void-status").textContent = "";
  $("void-form").hidden = !(collection && collection.method === "cash");
  $("bill").hidden = true;
  $("receipt-view").hidden = false;
  $("print-receipt").focus();
}

async function loadWorklist() {
  const page = await api("GET", "/v1/unit/dossiers?limit=20");
  const statuses = {
    submitted: "Đã nộp", received: "Đã tiếp nhận", processing: "Đang xử lý",
    supplement_requested: "Chờ bổ sung", awaiting_payment: "Chờ nộp phí", suspended: "Tạm dừng",
    result_ready: "Có kết quả", rejected: "Không giải quyết",
  };
  $("worklist").replaceChildren(
    ...page.data.map((dossier) => {
      const row = document.createElement("tr");
      if (dossier.overdue) row.className = "overdue";
      const due = when(dossier.due_at) + (dossier.overdue ? " — Quá hạn" : "");
      for (const text of [dossier.code, dossier.procedure_name, due, statuses[dossier.status] || dossier.status]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }),
  );
}

function showReport(closed) {
  const report = closed.report;
  const methodNames = { cash: "Tiền mặt", qr: "Quét mã QR" };
  const rows = report.by_method.map((m) => [methodNames[m.method] || m.method, m.count + " khoản, " + dong(m.amount)]);
  rows.push(
    ["Tiền hoàn trả", dong(report.cash_refunded)],
    ["Tiền mặt phải có", dong(report.expected_cash)],
    ["Tiền mặt đếm được", dong(report.counted_cash)],
    ["Chênh lệch", dong(report.difference)],
    ["Lý do chênh lệch", report.difference_reason || "—"],
  );
  $("report-rows").replaceChildren(
    ...rows.map(([label, value]) => {
      const row = document.createElement("tr");
      const th = document.createElement("th");
      const td = document.createElement("td");
      th.textContent = label;
      td.textContent = value;
      row.append(th, td);
      return row;
    }),
  );
  $("report").hidden = false;
}

// ---- Wiring ------------------------------------------------------------------------------

$("login-form").addEventListener(
  "submit",
  guarded(async () => {
    const phone = $("login-phone").value.trim();
    const password = $("login-password").value;
    // The password leaves the page with this request and is not kept anywhere.
    $("login-password").value = "";
    session.tokens = await api("POST", "/v1/auth/login", { phone, password });
    await showDesk();
  }),
);

$("logout").addEventListener(
  "click",
  guarded(async () => {
    const tokens = session.tokens;
    if (tokens) await api("POST", "/v1/auth/logout", { refresh_token: tokens.refresh_token }).catch(() => null);
    session.tokens = null;
    showLogin();
  }),
);

$("open-form").addEventListener(
  "submit",
  guarded(async () => {
    await api("POST", "/v1/counter/shifts", { opening_float: parseAmount($("open-float").value) });
    $("report").hidden = true;
    await loadShift();
  }),
);

$("lookup-form").addEventListener(
  "submit",
  guarded(async () => {
    const code = $("lookup-code").value.trim();
    showBill(await api("GET", "/v1/counter/bills/" + encodeURIComponent(code)));
    $("lookup-code").value = "";
  }),
);

$("cash-given").addEventListener("input", updateChange);
$("cash-form").addEventListener("submit", guarded(() => collect("cash")));
$("collect-qr").addEventListener("click", guarded(() => collect("qr")));
$("print-receipt").addEventListener("click", () => window.print());
$("next-bill").addEventListener("click", () => {
  $("receipt-view").hidden = true;
  $("qr-view").hidden = true;
  $("bill").hidden = true;
  $("lookup-code").focus();
});

$("void-form").addEventListener(
  "submit",
  guarded(async () => {
    const request = await api("POST", "/v1/counter/collections/" + collection.id + "/void", {
      reason: $("void-reason").value,
    });
    $("void-status").textContent = "Đã gửi đề nghị hủy; chờ lãnh đạo phê duyệt (" + request.id.slice(0, 8) + ").";
  }),
);

$("close-form").addEventListener(
  "submit",
  guarded(async () => {
    if (!shift) throw new Problem({ title: "Chưa mở ca làm việc", detail: "Không có ca nào đang mở để đóng." });
    const reason = $("close-reason").value.trim();
    const closed = await api("POST", "/v1/counter/shifts/" + shift.id + "/close", {
      counted_cash: parseAmount($("close-counted").value),
      difference_reason: reason === "" ? null : reason,
    });
    showReport(closed);
    await loadShift();
  }),
);

$("refresh-worklist").addEventListener("click", guarded(loadWorklist));

if (session.tokens) guarded(showDesk)();
else showLogin();
