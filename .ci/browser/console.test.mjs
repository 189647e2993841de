// The counter console in a real browser (Debian's headless Chromium, driven by playwright-core),
// against a server with the demo data (.ci/browser/run starts it): the demo officer of Phú Xuân
// logs in, opens a shift, collects one fee in cash (the receipt shown with its number and the
// amount in words), one by QR paid meanwhile through the API by the demo citizen (the screen
// turns paid without a reload), is refused a close without a reason, closes with a difference
// and a reason, sees the report and the unit's worklist; an expired session sends the officer
// back to the login. A screenshot of each step goes to $OUT; every request the page makes must
// go to civicpay itself.
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const BASE = process.env.BASE;
const OUT = process.env.OUT || "target/browser";
mkdirSync(OUT, { recursive: true });

const OFFICER = ["0900000002", "officer-demo-2026"];
const CITIZEN = ["0912345678", "citizen-demo-2026"];
const CITIZEN_PIN = "246810";

async function call(method, path, token, body, headers = {}) {
  const response = await fetch(BASE + path, {
    method,
    headers: {
      ...(token ? { authorization: "Bearer " + token } : {}),
      ...(body ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await response.json().catch(() => null);
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

const login = async ([phone, password]) => (await call("POST", "/v1/auth/login", null, { phone, password })).access_token;

// Two 8,000 đ fee bills: dossiers received at the counter for the demo citizen An.
async function feeBill(officer) {
  const document = (code) => ({
    code, name: code + ".pdf", size: 48213, uri: `s3://civicpay-documents/${code}.pdf`,
    sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  });
  const dossier = await call("POST", "/v1/counter/dossiers", officer, {
    procedure_code: "2.000635",
    applicant: { phone: "0912345678", full_name: "Nguyễn Văn An", national_id: "046095012345" },
    documents: [document("to_khai"), document("giay_to_tuy_than")],
  });
  return { dossier: dossier.code, bill: dossier.fee_bill };
}

const officerToken = await login(OFFICER);
const first = await feeBill(officerToken);
const second = await feeBill(officerToken);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1366, height: 768 }, locale: "vi-VN" });
const hosts = new Set();
page.on("request", (request) => hosts.add(new URL(request.url()).host));
let step = 0;
const shot = async (name) => {
  step += 1;
  await page.screenshot({ path: `${OUT}/${String(step).padStart(2, "0")}-${name}.png`, fullPage: true });
};
const text = (selector) => page.locator(selector).innerText();
const visible = (selector) => page.locator(selector).waitFor({ state: "visible", timeout: 15000 });

try {
  await page.goto(BASE + "/counter");
  assert.equal(await page.title(), "Quầy một cửa — civicpay");
  await shot("login");

  // Log in with the keyboard alone.
  await page.locator("#login-phone").fill(OFFICER[0]);
  await page.locator("#login-password").fill(OFFICER[1]);
  await page.keyboard.press("Enter");
  await visible("#no-shift");
  assert.equal(await page.locator("#login-password").inputValue(), "", "the page keeps no password");
  assert.ok(!(await page.evaluate(() => JSON.stringify(sessionStorage))).includes(OFFICER[1]));
  assert.match(await text("#who-name"), /Trần Thị Bích/);
  await shot("logged-in");

  await page.locator("#open-float").fill("500000");
  await page.keyboard.press("Enter");
  await visible("#open-shift");
  assert.match(await text("#shift-float"), /500\.000/);
  await shot("shift-open");

  // A scanner types the bill code and Enter into the focused field.
  await page.keyboard.type(first.bill.code);
  await page.keyboard.press("Enter");
  await visible("#bill");
  assert.match(await text("#bill-amount"), /8\.000/);
  assert.doesNotMatch(await text("#bill-payer"), /Nguyễn Văn An/, "the payer's name is masked");
  await page.keyboard.type("10000");
  assert.match(await text("#cash-change"), /2\.000/);
  await shot("bill-and-change");
  await page.keyboard.press("Enter");
  await visible("#receipt-view");
  await page.waitForFunction(() => /^\d+$/.test(document.getElementById("receipt-number").textContent));
  const shown = Number(await text("#receipt-number"));
  const bill = await call("GET", "/v1/counter/bills/" + first.bill.code, officerToken);
  const receipt = await call("GET", "/v1/receipts/" + bill.receipt_id, officerToken);
  assert.equal(shown, receipt.number, "the receipt's number");
  assert.equal(await text("#receipt-words"), "Tám nghìn đồng");
  assert.match(await text("#receipt-amount"), /8\.000/);
  assert.equal(await text("#receipt-method"), "Tiền mặt");
  await page.waitForFunction(() => document.getElementById("receipt-qr").naturalWidth > 0);
  await shot("receipt");

  // By QR, found by the dossier's code; the citizen pays in the app meanwhile.
  await page.locator("#next-bill").click();
  await page.locator("#lookup-code").fill(second.dossier);
  await page.keyboard.press("Enter");
  await visible("#bill");
  await page.locator("#collect-qr").click();
  await visible("#qr-view");
  await page.waitForFunction(() => document.getElementById("qr-image").naturalWidth > 0);
  assert.equal(await text("#qr-status"), "Đang chờ thanh toán…");
  await shot("qr-waiting");
  const citizen = await login(CITIZEN);
  await call("POST", `/v1/bills/${second.bill.id}/pay`, citizen, {}, {
    "idempotency-key": "browser-" + second.bill.code, "x-payment-pin": CITIZEN_PIN,
  });
  await page.waitForFunction(() => document.getElementById("qr-status").textContent === "Đã thanh toán", null, { timeout: 25000 });
  await shot("qr-paid");

  // A refusal is shown with the problem's Vietnamese title and detail.
  await page.locator("#close-counted").fill("507000");
  await page.keyboard.press("Enter");
  await visible("#problem");
  assert.equal(await text("#problem-title"), "Dữ liệu không hợp lệ");
  assert.ok((await text("#problem-detail")).length > 0);
  await shot("close-refused");
  await page.locator("#close-reason").fill("Thiếu 1.000 đ tiền lẻ");
  await page.locator("#close-reason").press("Enter");
  await visible("#report");
  const report = await text("#report");
  assert.match(report, /508\.000/, "expected cash: float + the cash fee");
  assert.match(report, /-1\.000/, "the difference");
  assert.match(report, /Thiếu 1\.000 đ tiền lẻ/);
  await visible("#no-shift");
  await shot("report");

  // Looking up an unknown code: refused in words, not a blank screen.
  await page.locator("#lookup-code").fill("BAAAAAAAAAAA");
  await page.keyboard.press("Enter");
  await visible("#problem");
  assert.equal(await text("#problem-title"), "Không tìm thấy");

  const worklist = await text("#worklist");
  assert.ok(worklist.includes(first.dossier) && worklist.includes(second.dossier), worklist);
  await shot("worklist");

  // An expired session (tokens no longer valid): back to the login, told why.
  await page.evaluate(() =>
    sessionStorage.setItem("civicpay.tokens", JSON.stringify({ access_token: "expired", refresh_token: "expired" })),
  );
  await page.locator("#refresh-worklist").click();
  await visible("#login-view");
  assert.equal(await text("#problem-title"), "Phiên đăng nhập đã hết hạn");
  await shot("session-expired");

  const own = new URL(BASE).host;
  assert.deepEqual([...hosts].filter((host) => host !== own), [], "requests only to civicpay");
  console.log(`console: ${step} steps passed; requests went to ${[...hosts].join(", ")} only; screenshots in ${OUT}/`);
} catch (error) {
  await shot("failure").catch(() => {});
  throw error;
} finally {
  await browser.close();
}
