# Checks shared by the shell tests (tests/smoke, tests/compose). Source it
# after defining `fail CHECK [DETAILS]` (each script reports a failure its
# own way) and setting PASSED=0.

# pass CHECK: counts and prints a passed check.
pass() {
    PASSED=$((PASSED + 1))
    echo "ok   $PASSED - $1"
}

# expect_contains CHECK HAYSTACK NEEDLE...: every needle is a fixed string
# that must appear in HAYSTACK.
expect_contains() {
    local check=$1 haystack=$2
    shift 2
    local needle
    for needle in "$@"; do
        grep -qF -- "$needle" <<<"$haystack" || fail "$check" "expected to find: $needle
in:
$haystack"
    done
    pass "$check"
}

# expect_absent CHECK HAYSTACK NEEDLE: NEEDLE (case-insensitive) must not
# appear in HAYSTACK.
expect_absent() {
    local check=$1 haystack=$2 needle=$3
    if grep -qiF -- "$needle" <<<"$haystack"; then
        fail "$check" "did not expect to find: $needle
in:
$haystack"
    fi
    pass "$check"
}

# expect_equal CHECK ACTUAL EXPECTED
expect_equal() {
    [[ $2 == "$3" ]] || fail "$1" "expected: $3
got:      $2"
    pass "$1"
}
