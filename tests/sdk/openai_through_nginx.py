"""The official OpenAI Python SDK against a model server behind nginx and forward auth.

Usage: openai_through_nginx.py BASE_URL GOOD_KEY SPENT_KEY
- GOOD_KEY (a project key with budget left) gets a chat completion from the stub server;
- SPENT_KEY (a project key whose per-minute budget for the model is spent) makes the SDK
  raise RateLimitError, carrying OpenAI's x-ratelimit-* headers.
Prints "ok" and exits 0 when both hold.
"""

import sys

import openai


def main() -> int:
    base_url, good_key, spent_key = sys.argv[1:4]
    good = openai.OpenAI(base_url=base_url, api_key=good_key, max_retries=0)
    answer = good.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
    )
    content = answer.choices[0].message.content or ""
    if "project=[proj_" not in content:
        print(f"the upstream did not see the project: {content!r}")
        return 1

    spent = openai.OpenAI(base_url=base_url, api_key=spent_key, max_retries=0)
    try:
        spent.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
    except openai.RateLimitError as error:
        headers = error.response.headers
        if headers.get("x-ratelimit-remaining-requests") != "0":
            print(f"429 without the remaining count: {dict(headers)}")
            return 1
        if error.code != "rate_limit_exceeded":
            print(f"unexpected error code {error.code!r}")
            return 1
        print("ok")
        return 0
    print("a spent budget did not raise RateLimitError")
    return 1


if __name__ == "__main__":
    sys.exit(main())
