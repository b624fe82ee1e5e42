// Posts the verdict (comment.md, written by `mnist-bench verdict`) as the pull request's one bot comment.
//
// Called from bench.yml's actions/github-script step with the `github`, `context` and `core` it provides,
// and from tests/test_comment_step.py (through tests/comment_step_harness.js) with a real Octokit whose
// HTTP layer is faked. Rules:
// - only a comment written by this token's identity and starting with MARKER is ever edited: a human's
//   comment that quotes the marker is not ours to overwrite;
// - an edit on every rerun, never a second comment;
// - a missing or empty body (the verdict step crashed) posts nothing and fails the step;
// - a fork's pull request, or a token that may not write (e.g. Dependabot's), leaves the verdict in the job
//   summary only, which the verdict step already wrote.
"use strict";

const fs = require("fs");

const MARKER = "<!-- mnist-bench-verdict -->"; // harness/gate/verdict.py MARKER (the test checks they agree)
const ACTIONS_BOT = { login: "github-actions[bot]", type: "Bot" };
const MAX_BODY = 65536; // GitHub rejects a longer comment body (422)

function readBody(path) {
  try {
    return fs.readFileSync(path, "utf8");
  } catch (e) {
    if (e.code === "ENOENT") return null;
    throw e;
  }
}

function shorten(body, runUrl) {
  if (body.length <= MAX_BODY) return body;
  const note = `\n\n… cut to GitHub's comment limit; the whole verdict is in the [run's summary](${runUrl}).\n`;
  return body.slice(0, MAX_BODY - note.length) + note;
}

// Who the token is. The workflow's GITHUB_TOKEN (an installation token) may not read /user; its comments are
// github-actions[bot]'s.
async function identity(github) {
  try {
    const { data } = await github.rest.users.getAuthenticated();
    return { login: data.login, type: data.type };
  } catch (e) {
    if ([401, 403, 404].includes(e.status)) return ACTIONS_BOT;
    throw e;
  }
}

function isOurs(comment, me) {
  const user = comment.user || {};
  return user.login === me.login && user.type === me.type && (comment.body || "").startsWith(MARKER);
}

async function summaryOnly(core, why) {
  core.notice(`${why}; the verdict is in this run's summary`, { title: "mnist-bench verdict" });
  await core.summary.addRaw(`\n_mnist-bench: ${why}; no pull-request comment was written._\n`).write();
}

module.exports = async function postVerdict({ github, context, core, path = "comment.md" }) {
  const pr = context.payload.pull_request;
  if (!pr) {
    core.setFailed("not a pull_request event: there is no pull request to comment on");
    return "failed";
  }
  const raw = readBody(path);
  if (raw === null || raw.trim() === "") {
    core.setFailed(`${path} is ${raw === null ? "missing" : "empty"} (did \`mnist-bench verdict\` fail?): nothing posted`);
    return "failed";
  }
  if (!raw.startsWith(MARKER)) {
    core.setFailed(`${path} does not start with ${MARKER}: not a verdict, nothing posted`);
    return "failed";
  }
  const { owner, repo } = context.repo;
  const headRepo = pr.head && pr.head.repo ? pr.head.repo.full_name : null; // null: the fork was deleted
  if (headRepo !== `${owner}/${repo}`) {
    await summaryOnly(core, "a fork's token cannot comment");
    return "summary";
  }
  const runUrl = `${context.serverUrl}/${owner}/${repo}/actions/runs/${context.runId}`;
  const body = shorten(raw, runUrl);
  const issue_number = pr.number;
  const me = await identity(github);
  const comments = await github.paginate(github.rest.issues.listComments, { owner, repo, issue_number, per_page: 100 });
  const mine = comments.find((c) => isOurs(c, me));
  try {
    if (mine) {
      await github.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body });
      core.info(`updated comment ${mine.id} of ${me.login}`);
      return "updated";
    }
    const { data } = await github.rest.issues.createComment({ owner, repo, issue_number, body });
    core.info(`created comment ${data.id} as ${me.login}`);
    return "created";
  } catch (e) {
    if (e.status !== 403) throw e;
    core.warning(`the token may not write comments here (${e.message})`);
    await summaryOnly(core, "this run's token may not comment");
    return "summary";
  }
};

module.exports.MARKER = MARKER;
