/* zlt-foreign-module.c: a shared object named like a plugin that exports nothing of ours */
#include "config.h"

#include <gmodule.h>

G_MODULE_EXPORT int zlt_foreign_answer (void);

G_MODULE_EXPORT int
zlt_foreign_answer (void)
{
  return 42;
}
