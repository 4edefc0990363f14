-- wrk script: the admin key from $AAK_KEY introspects itself (kept out of wrk's argv).
local key = os.getenv("AAK_KEY")
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "token=" .. key
