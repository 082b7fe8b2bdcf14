/*
 * api_image.c - public entry points for images. (Stub until the vision
 * issue lands.)
 */
#include "handle.h"

static int not_yet(void **out, char *errbuf, size_t n)
{
    if (out) *out = NULL;
    llv_err e;
    llv_fail(&e, LLAVA_E_UNSUPPORTED, "not implemented yet");
    llv_err_to_buf(&e, errbuf, n);
    return LLAVA_E_UNSUPPORTED;
}

LLAVA_API int llava_load_image(const char *path, const llava_params *params, llava_image **out, char *errbuf, size_t errbuf_size)
{ return not_yet((void **)out, errbuf, errbuf_size); }
LLAVA_API int llava_new_image_from_bytes(const void *data, size_t size, const llava_params *params, llava_image **out, char *errbuf, size_t errbuf_size)
{ return not_yet((void **)out, errbuf, errbuf_size); }
LLAVA_API int llava_new_image_from_pixels(const void *pixels, int32_t width, int32_t height, size_t stride, int format, unsigned flags,
                                          const llava_params *params, llava_image **out, char *errbuf, size_t errbuf_size)
{ return not_yet((void **)out, errbuf, errbuf_size); }
LLAVA_API void llava_free_image(llava_image *image) { (void)image; }
LLAVA_API int32_t llava_image_width(const llava_image *image) { return 0; }
LLAVA_API int32_t llava_image_height(const llava_image *image) { return 0; }
LLAVA_API const uint8_t *llava_image_rgb(const llava_image *image) { return NULL; }
