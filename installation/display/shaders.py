"""The GLSL programs of the GL presenter (installation.display.gl), written for this project.

Every pass draws one triangle that covers its target; each fragment works out which pixel it
is from ``gl_FragCoord``. Textures hold image rows top first (as frames arrive), and so do the
intermediate targets; only the last pass, which draws the screen, turns rows over.

1. ``MIX``: at the frame's own size, decode the two frames from sRGB to linear light with
   the exact piecewise sRGB curve (IEC 61966-2-1) and blend them there, so a crossfade
   between two faces keeps its brightness.
2. ``SCALE``: one axis of a separable resampling filter: across, into an intermediate as wide
   as the picture on screen (skipped by the linear scaler, which samples in the last pass).
3. ``SCREEN``: down, for each screen pixel: the picture inside its rectangle, the background
   around it; grain and vignette on the picture, brightness on everything, all in linear
   light; then encoded to sRGB and dithered with blue noise before it is rounded to 8 bits.

The filters' weights come from tables made on the host (installation.display.kernels).
When the picture is made larger the result is clamped to the two source pixels nearest each
output pixel on that axis (over both passes: the 2 x 2 around it), the usual anti-ringing
step, so edges stay sharp without the halos that Lanczos and bicubic filters make.
"""

from __future__ import annotations

VERTEX = """
#version 330
void main() {
    // One triangle that covers the target: corners (-1,-1), (3,-1), (-1,3).
    vec2 corner = vec2(float((gl_VertexID & 1) << 2) - 1.0, float((gl_VertexID & 2) << 1) - 1.0);
    gl_Position = vec4(corner, 0.0, 1.0);
}
"""

_SRGB = """
vec3 to_linear(vec3 c) {
    return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), step(vec3(0.04045), c));
}
vec3 to_srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(vec3(0.0031308), c));
}
"""

MIX = (
    """
#version 330
uniform sampler2D first;
uniform sampler2D second;
uniform float weight;
out vec4 colour;
"""
    + _SRGB
    + """
// Bilinear in linear light from exact texel reads; at the texture's own size it is one texel.
vec3 linear_at(sampler2D image, vec2 uv) {
    ivec2 size = textureSize(image, 0);
    vec2 position = uv * vec2(size) - 0.5;
    ivec2 base = ivec2(floor(position));
    vec2 f = position - vec2(base);
    ivec2 top = size - 1;
    vec3 a = to_linear(texelFetch(image, clamp(base, ivec2(0), top), 0).rgb);
    vec3 b = to_linear(texelFetch(image, clamp(base + ivec2(1, 0), ivec2(0), top), 0).rgb);
    vec3 c = to_linear(texelFetch(image, clamp(base + ivec2(0, 1), ivec2(0), top), 0).rgb);
    vec3 d = to_linear(texelFetch(image, clamp(base + ivec2(1, 1), ivec2(0), top), 0).rgb);
    return mix(mix(a, b, f.x), mix(c, d, f.x), f.y);
}
void main() {
    vec2 uv = gl_FragCoord.xy / vec2(textureSize(first, 0));
    vec3 result = linear_at(first, uv);
    if (weight > 0.0) {
        result = mix(result, linear_at(second, uv), weight);
    }
    colour = vec4(result, 1.0);
}
"""
)

_FILTER = """
// One output pixel along one axis of ``image``: output pixel ``out_index`` reads the weights
// of its row of ``weights`` (installation.display.kernels.weight_table); ``axis`` 0 reads
// across row ``line``, 1 reads down column ``line``.
vec3 filtered(sampler2D image, sampler2D weights, int axis, int line, int out_index) {
    int count = textureSize(image, 0)[axis];
    vec4 header = texelFetch(weights, ivec2(0, out_index), 0);
    int first = int(header.x);
    vec3 sum = vec3(0.0);
    for (int t = 1; t < textureSize(weights, 0).x; ++t) {
        vec4 w = texelFetch(weights, ivec2(t, out_index), 0);
        for (int k = 0; k < 4; ++k) {
            int j = clamp(first + 4 * (t - 1) + k, 0, count - 1);
            sum += w[k] * texelFetch(image, axis == 0 ? ivec2(j, line) : ivec2(line, j), 0).rgb;
        }
    }
    if (header.z > 0.5) {
        int nearest = clamp(int(header.y), 0, count - 1);
        int next = clamp(int(header.y) + 1, 0, count - 1);
        vec3 p = texelFetch(image, axis == 0 ? ivec2(nearest, line) : ivec2(line, nearest), 0).rgb;
        vec3 q = texelFetch(image, axis == 0 ? ivec2(next, line) : ivec2(line, next), 0).rgb;
        sum = clamp(sum, min(p, q), max(p, q));
    }
    return sum;
}
"""

SCALE = (
    """
#version 330
uniform sampler2D source;
uniform sampler2D weights;
out vec4 colour;
"""
    + _FILTER
    + """
void main() {
    colour = vec4(filtered(source, weights, 0, int(gl_FragCoord.y), int(gl_FragCoord.x)), 1.0);
}
"""
)

SCREEN = (
    """
#version 330
uniform sampler2D picture;     // linear light: the mixed frame, or the SCALE pass's output
uniform sampler2D backdrop;    // linear light, with mipmaps
uniform sampler2D dither;      // blue noise ranks in 0..1
uniform bool sampled;          // the linear scaler: the hardware's bilinear on ``picture``
uniform sampler2D weights;     // the filter down the picture, unless ``sampled``
uniform vec4 rect;             // the picture: x, y from the top left, width, height
uniform vec2 screen;
uniform vec3 background;       // sRGB 0..1, brightness applied: the same for every pixel
uniform bool has_backdrop;
uniform vec4 backdrop_rect;    // where the backdrop image covers the screen, as rect
uniform float brightness;
uniform float grain;
uniform float vignette;
uniform uint frame_seed;
out vec4 colour;
"""
    + _SRGB
    + _FILTER
    + """
// PCG hash (O'Neill 2014), for grain that changes every frame and repeats with the seed.
uint pcg(uint v) {
    uint state = v * 747796405u + 2891336453u;
    uint word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}
float uniform01(uint v) { return float(pcg(v)) / 4294967296.0; }

void main() {
    vec2 pixel = vec2(gl_FragCoord.x, screen.y - gl_FragCoord.y);  // from the top left
    vec2 inside = pixel - rect.xy;
    float noise = texelFetch(dither, ivec2(gl_FragCoord.xy) % textureSize(dither, 0), 0).r;
    vec3 light;
    if (all(greaterThanEqual(inside, vec2(0.0))) && all(lessThan(inside, rect.zw))) {
        if (sampled) {
            light = texture(picture, inside / rect.zw).rgb;
        } else {
            light = filtered(picture, weights, 1, int(inside.x), int(inside.y));
        }
        if (grain > 0.0) {
            uvec2 p = uvec2(gl_FragCoord.xy);
            uint key = pcg(p.x + pcg(p.y + pcg(frame_seed)));
            // Two uniforms make a triangular variate of unit variance.
            float n = (uniform01(key) + uniform01(key ^ 0x9e3779b9u) - 1.0) * 2.449;
            light *= max(0.0, 1.0 + 0.2 * grain * n);
        }
        if (vignette > 0.0) {
            // Natural vignetting, the cos^4 law, with the corners 45 degrees off axis.
            float r = length((inside / rect.zw - 0.5) * 2.0) / sqrt(2.0);
            float falloff = 1.0 / ((1.0 + r * r) * (1.0 + r * r));
            light *= mix(1.0, falloff, vignette);
        }
    } else if (has_backdrop) {
        light = texture(backdrop, (pixel - backdrop_rect.xy) / backdrop_rect.zw).rgb;
    } else {
        colour = vec4(background + (noise - 0.5) / 255.0, 1.0);
        return;
    }
    colour = vec4(to_srgb(light * brightness) + (noise - 0.5) / 255.0, 1.0);
}
"""
)
