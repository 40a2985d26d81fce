/* The main flow through the C ABI: open a store, make a key, create a
 * signed RPM repository, add a package, publish, list, export, sync to a
 * directory mirror; then the error paths (missing repository, NULL
 * argument, bad package, bad store and target locations). Built with
 * -Wall -Wextra -Werror and run under valgrind by tests/tests/ffi_c.rs.
 *
 * usage: flow DATA_DIR PACKAGE.rpm BAD.rpm EXPORT_DIR */
#include <stdio.h>
#include <string.h>

#include "repokit.h"

static int failed(const char *what, repokit_status got, repokit_status want) {
  char msg[512];
  size_t n = 0;
  repokit_last_error(msg, sizeof msg, &n);
  fprintf(stderr, "%s: status %d, wanted %d: %s\n", what, (int)got, (int)want, msg);
  return 1;
}

#define EXPECT(call, want)                                  \
  do {                                                      \
    repokit_status s_ = (call);                             \
    if (s_ != (want)) return failed(#call, s_, (want));     \
  } while (0)

#define CHECK(call) EXPECT(call, REPOKIT_OK)

static int contains(char *json, const char *needle) {
  int found = json != NULL && strstr(json, needle) != NULL;
  if (!found) fprintf(stderr, "%s lacks %s\n", json ? json : "(null)", needle);
  repokit_string_free(json);
  return found;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s DATA_DIR PACKAGE.rpm BAD.rpm EXPORT_DIR\n", argv[0]);
    return 2;
  }
  printf("repokit %s\n", repokit_version());
  repokit_store *store = NULL;
  CHECK(repokit_store_open(argv[1], &store));
  char *out = NULL;

  CHECK(repokit_key_generate(store, "ci", "CI <ci@example.org>", "ed25519", &out));
  if (!contains(out, "\"fingerprint\"")) return 1;
  CHECK(repokit_key_export(store, "ci", &out));
  if (!contains(out, "BEGIN PGP PUBLIC KEY BLOCK")) return 1;
  CHECK(repokit_repo_create(
      store, "{\"name\": \"c-test\", \"format\": \"rpm\", \"sign_with\": \"ci\"}", &out));
  if (!contains(out, "\"c-test\"")) return 1;

  const char *packages[] = {argv[2]};
  CHECK(repokit_add(store, "c-test", packages, 1, &out));
  if (!contains(out, "\"added\":[{")) return 1;
  CHECK(repokit_publish(store, "c-test", &out));
  if (!contains(out, "\"noop\":false")) return 1;
  CHECK(repokit_repo_list(store, &out));
  if (!contains(out, "\"packages\":1")) return 1;
  CHECK(repokit_repo_show(store, "c-test", &out));
  if (!contains(out, "\"published\":\"")) return 1;
  CHECK(repokit_export(store, "c-test", argv[4], &out));
  if (!contains(out, "\"files\"")) return 1;
  char targets[4096];
  snprintf(targets, sizeof targets, "[\"file://%s-mirror\"]", argv[4]);
  CHECK(repokit_sync(store, "c-test", targets, &out));
  if (!contains(out, "\"switched\":true")) return 1;

  /* Failures: a status and a message; out parameters stay untouched. */
  out = NULL;
  EXPECT(repokit_repo_show(store, "missing", &out), REPOKIT_NOT_FOUND);
  if (out != NULL) return failed("out written on failure", REPOKIT_OK, REPOKIT_NOT_FOUND);
  size_t n = 0;
  repokit_last_error(NULL, 0, &n);
  if (n == 0) return failed("no message", REPOKIT_OK, REPOKIT_NOT_FOUND);
  EXPECT(repokit_add(store, "c-test", NULL, 1, &out), REPOKIT_NULL_PARAMETER);
  EXPECT(repokit_repo_show(NULL, "c-test", &out), REPOKIT_NULL_PARAMETER);
  const char *bad[] = {argv[3]};
  EXPECT(repokit_add(store, "c-test", bad, 1, &out), REPOKIT_INVALID_PACKAGE);
  EXPECT(repokit_repo_create(store, "{\"name\": 1}", &out), REPOKIT_INVALID_INPUT);
  EXPECT(repokit_sync(store, "c-test", "[\"ftp://elsewhere\"]", &out), REPOKIT_INVALID_INPUT);
  EXPECT(repokit_sync(store, "c-test", "{\"targets\": 1}", &out), REPOKIT_INVALID_INPUT);
  repokit_store *other = NULL;
  EXPECT(repokit_store_open("http://bucket/prefix", &other), REPOKIT_INVALID_INPUT);
  EXPECT(repokit_store_open("s3://a/prefix", &other), REPOKIT_INVALID_INPUT);
  EXPECT(repokit_store_open_at(argv[1], "/tmp", &other), REPOKIT_INVALID_INPUT);
  if (other != NULL) return failed("out written on failure", REPOKIT_OK, REPOKIT_INVALID_INPUT);

  repokit_store_free(store);
  repokit_store_free(NULL);
  repokit_string_free(NULL);
  printf("ok\n");
  return 0;
}
