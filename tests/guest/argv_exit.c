/*
 * argv_exit: a small guest the BusyBox shell tests run from scripts. Not a self-checking
 * test; it prints its first argument on a line and exits with the status its second
 * argument names (0 without one):
 *
 *   argv_exit WORD [STATUS]
 *
 * No arguments at all exit with 64.
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    printf("%s\n", argv[1]);
    return argc > 2 ? atoi(argv[2]) : 0;
}
