-- wrk script: authenticate with the admin key from $AAK_KEY (kept out of wrk's argv).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("AAK_KEY")
