from fastapi import APIRouter

from app.api.routes import datasets, health, inference, jobs, label_studio, models, oip, pages, presets, uploads

api_router = APIRouter()
for module in (jobs, presets, datasets, uploads, models, inference, oip, label_studio, health, pages):
    api_router.include_router(module.router)
