// Runs bench.yml's github-script comment step the way actions/github-script@v8 does, with a real Octokit
// from @actions/github whose fetch is a fake GitHub: no network. Driven by tests/test_comment_step.py.
//
//   ACTIONS_NODE_MODULES  folder holding @actions/github and @actions/core (.ci/run installs them)
//   STEP_SCRIPT           the step's `script:` text, as a file
//   FAKE_GITHUB           the fake's state, as JSON: {identity: {login, type} | null (=> 403), comments: [...],
//                         write_status: 200 | 403, page_size}
//   RESULT                where the requests made and the script's result are written, as JSON
// GITHUB_EVENT_PATH, GITHUB_REPOSITORY, GITHUB_STEP_SUMMARY and the other runner variables come from the test,
// and the working directory is the job's workspace (comment.md, .github/scripts/comment.js).
"use strict";

const fs = require("fs");
const path = require("path");

const modules = process.env.ACTIONS_NODE_MODULES;
const { getOctokit, context } = require(path.join(modules, "@actions/github"));
const core = require(path.join(modules, "@actions/core"));

const fake = JSON.parse(fs.readFileSync(process.env.FAKE_GITHUB, "utf8"));
const requests = [];

function reply(status, data, headers = {}) {
  return new Response(status === 204 ? null : JSON.stringify(data), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

async function fakeFetch(url, options) {
  const method = (options.method || "GET").toUpperCase();
  const u = new URL(url);
  const body = options.body ? JSON.parse(options.body) : undefined;
  requests.push({ method, path: u.pathname, query: Object.fromEntries(u.searchParams), body });
  const { owner, repo } = context.repo;
  let m;
  if (method === "GET" && u.pathname === "/user") {
    return fake.identity ? reply(200, fake.identity) : reply(403, { message: "Resource not accessible by integration" });
  }
  if (method === "GET" && (m = u.pathname.match(/^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/))) {
    if (m[1] !== owner || m[2] !== repo) return reply(404, { message: "Not Found" });
    const size = fake.page_size || Number(u.searchParams.get("per_page") || 30);
    const page = Number(u.searchParams.get("page") || 1);
    const all = fake.comments.filter((c) => String(c.issue) === m[3]);
    const headers = {};
    if (page * size < all.length) {
      const next = new URL(u);
      next.searchParams.set("page", String(page + 1));
      headers.link = `<${next}>; rel="next"`;
    }
    return reply(200, all.slice((page - 1) * size, page * size), headers);
  }
  if (method === "PATCH" && (m = u.pathname.match(/^\/repos\/[^/]+\/[^/]+\/issues\/comments\/(\d+)$/))) {
    if (fake.write_status === 403) return reply(403, { message: "Resource not accessible by integration" });
    const comment = fake.comments.find((c) => String(c.id) === m[1]);
    if (!comment) return reply(404, { message: "Not Found" });
    comment.body = body.body;
    return reply(200, comment);
  }
  if (method === "POST" && (m = u.pathname.match(/^\/repos\/[^/]+\/[^/]+\/issues\/(\d+)\/comments$/))) {
    if (fake.write_status === 403) return reply(403, { message: "Resource not accessible by integration" });
    const user = fake.identity || { login: "github-actions[bot]", type: "Bot" };
    const comment = { id: 9000 + requests.length, issue: Number(m[1]), user, body: body.body };
    fake.comments.push(comment);
    return reply(201, comment);
  }
  return reply(404, { message: `the fake GitHub has no ${method} ${u.pathname}` });
}

// actions/github-script's `require`: relative paths from the working directory (src/wrap-require.ts)
function wrappedRequire(id) {
  return require(id.startsWith(".") ? path.resolve(id) : require.resolve(id, { paths: [process.cwd()] }));
}

async function main() {
  const github = getOctokit("fake-token", { request: { fetch: fakeFetch } });
  const source = fs.readFileSync(process.env.STEP_SCRIPT, "utf8");
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
  const args = { require: wrappedRequire, github, octokit: github, context, core };
  let result = null;
  let error = null;
  try {
    result = await new AsyncFunction(...Object.keys(args), source)(...Object.values(args));
  } catch (e) {
    error = String(e && e.message ? e.message : e);
    core.setFailed(error); // as github-script does with an error the script throws
  }
  fs.writeFileSync(process.env.RESULT, JSON.stringify({ requests, result: result ?? null, error, comments: fake.comments }));
}

main();
