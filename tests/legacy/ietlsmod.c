/* A module with IE_BYTES bytes of initial-exec TLS, as some libraries
 * declare it for speed: a dlopen places it in the static TLS surplus
 * glibc keeps below every thread's blocks (tests/legacy/ietls.c). */
__attribute__((tls_model("initial-exec")))
__thread unsigned char ietls_block[IE_BYTES] = { 7, [IE_BYTES - 1] = 9 };

int ietls_get(void)
{
	return ietls_block[0] * 100 + ietls_block[IE_BYTES - 1];
}

void ietls_set(int v)
{
	ietls_block[0] = (unsigned char)(v / 100);
	ietls_block[IE_BYTES - 1] = (unsigned char)(v % 100);
}
