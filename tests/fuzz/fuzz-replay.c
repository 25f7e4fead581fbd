/* fuzz-replay.c: main() for a fuzz target built without libFuzzer (the normal gcc
 * build). Runs every input once: each file named on the command line, and every file
 * of each directory named (sorted, hidden files skipped). Prints TAP, one line per
 * input; a crash or a broken invariant ends the program, so the seed corpora are
 * regression tests in every build.
 *
 *   fuzz-replay-TARGET [--tap] FILE|DIR...
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zlt-fuzz.h"

/* g_ptr_array_sort hands pointers to the elements */
static gint
compare_paths (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

static void
collect (const char *path, GPtrArray *files)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GPtrArray) names = NULL;
  const char *name;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_ptr_array_add (files, g_strdup (path));
      return;
    }
  dir = g_dir_open (path, 0, &error);
  if (dir == NULL)
    {
      fprintf (stderr, "cannot open %s: %s\n", path, error->message);
      exit (1);
    }
  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_paths);
  for (guint i = 0; i < names->len; i++)
    g_ptr_array_add (files, g_build_filename (path, g_ptr_array_index (names, i), NULL));
}

int
main (int argc, char **argv)
{
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);

  if (LLVMFuzzerInitialize (&argc, &argv) != 0)
    return 1;
  for (int i = 1; i < argc; i++)
    if (g_strcmp0 (argv[i], "--tap") != 0)
      collect (argv[i], files);
  if (files->len == 0)
    {
      fprintf (stderr, "usage: %s [--tap] FILE|DIR...\n", argv[0]);
      return 1;
    }
  printf ("TAP version 13\n1..%u\n", files->len);
  for (guint i = 0; i < files->len; i++)
    {
      const char *path = g_ptr_array_index (files, i);
      g_autoptr (GError) error = NULL;
      g_autofree char *contents = NULL;
      g_autofree char *base = g_path_get_basename (path);
      gsize len = 0;

      if (!g_file_get_contents (path, &contents, &len, &error))
        {
          printf ("not ok %u - %s: %s\n", i + 1, base, error->message);
          return 1;
        }
      fflush (stdout);
      /* an exact-size copy, so that valgrind and ASan see reads past the end */
      {
        g_autofree guint8 *copy = g_malloc (MAX (len, 1));
        memcpy (copy, contents, len);
        LLVMFuzzerTestOneInput (copy, len);
      }
      printf ("ok %u - %s (%" G_GSIZE_FORMAT " bytes)\n", i + 1, base, len);
    }
  return 0;
}
